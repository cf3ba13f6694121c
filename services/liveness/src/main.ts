/** The liveness process: `npm start -w @faceprint/liveness` (see docs/configuration.md). */
import { runService } from '@faceprint/service-kit';
import { loadLivenessConfig } from './liveness-config.js';
import { livenessService } from './liveness-service.js';

await runService('liveness', ({ env, log }) => livenessService(loadLivenessConfig(env), { log }));
