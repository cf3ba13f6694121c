/** The embedder process: `npm start -w @faceprint/embedder` (see docs/configuration.md). */
import { runService } from '@faceprint/service-kit';
import { loadEmbedderConfig } from './embedder-config.js';
import { embedderService } from './embedder-service.js';

await runService('embedder', ({ env, log }) => embedderService(loadEmbedderConfig(env), { log }));
