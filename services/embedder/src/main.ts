/** The embedder process: `npm start -w @faceprint/embedder` (see the README for its settings). */
import { runService } from '@faceprint/service-kit';
import { embedderService } from './embedder-service.js';

await runService('embedder', () => ({ services: embedderService() }));
