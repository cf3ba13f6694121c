/** The aligner process: `npm start -w @faceprint/aligner` (see docs/configuration.md). */
import { runService } from '@faceprint/service-kit';
import { loadAlignerConfig } from './aligner-config.js';
import { alignerService } from './aligner-service.js';

await runService('aligner', ({ env, config }) => alignerService(loadAlignerConfig(env), { maxResponseBytes: config.maxMessageBytes }));
