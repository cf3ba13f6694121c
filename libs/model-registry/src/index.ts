/**
 * @faceprint/model-registry: versioned, verified model artifacts on disk (see registry.ts for the
 * layout). The trainer writes; the detector, aligner and embedder read and watch `current`.
 */
import { fileURLToPath } from 'node:url';

export * from './registry.js';

/** Where the registry lives unless FACEPRINT_MODEL_REGISTRY says otherwise: `<repo>/data/models`. */
export const DEFAULT_REGISTRY_ROOT = fileURLToPath(new URL('../../../data/models', import.meta.url));
