/** The importers of the default model set, by name. */
import { faceLandmark68Importer, faceRecognitionNetImporter } from './face-api/importers.js';
import type { Importer } from './importer.js';
import { yunetImporter } from './yunet.js';

export * from './importer.js';

/** Every importer, by name (the registry model name). */
export const IMPORTERS: ReadonlyMap<string, Importer> = new Map(
  [yunetImporter, faceRecognitionNetImporter, faceLandmark68Importer].map((importer) => [importer.name, importer]),
);

/** The models `npm run models` and the first `npm start` import. */
export const DEFAULT_MODELS: readonly string[] = ['yunet-n', 'face-recognition-net', 'face-landmark-68'];
