/** The aligner process: `npm start -w @faceprint/aligner` (see the README for its settings). */
import { runService } from '@faceprint/service-kit';
import { alignerService } from './aligner-service.js';

await runService('aligner', () => ({ services: alignerService() }));
