/** The detector process: `npm start -w @faceprint/detector` (see the README for its settings). */
import { runService } from '@faceprint/service-kit';
import { detectorService } from './detector-service.js';

await runService('detector', () => ({ services: detectorService() }));
