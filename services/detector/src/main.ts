/** The detector process: `npm start -w @faceprint/detector` (see docs/configuration.md). */
import { runService } from '@faceprint/service-kit';
import { loadDetectorConfig } from './detector-config.js';
import { detectorService } from './detector-service.js';

await runService('detector', ({ env }) => detectorService(loadDetectorConfig(env)));
