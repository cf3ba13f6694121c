/**
 * @faceprint/model-registry: versioned, verified model artifacts on disk (see registry.ts for the
 * layout). The trainer writes; the detector, aligner, embedder and liveness read and watch `current`
 * (model-manager.ts: hot swap of the served version).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export * from './model-manager.js';
export * from './registry.js';

/** Where the registry lives unless FACEPRINT_MODEL_REGISTRY says otherwise: `<repo>/data/models`. */
export const DEFAULT_REGISTRY_ROOT = fileURLToPath(new URL('../../../data/models', import.meta.url));

/**
 * The registry root from FACEPRINT_MODEL_REGISTRY (default {@link DEFAULT_REGISTRY_ROOT}); a
 * relative path is taken from where the user ran the command (npm -w changes directory).
 */
export function registryRootFromEnv(env: NodeJS.ProcessEnv): string {
  return resolve(env.INIT_CWD ?? process.cwd(), env.FACEPRINT_MODEL_REGISTRY || DEFAULT_REGISTRY_ROOT);
}
