/** The trainer process: `npm start -w @faceprint/trainer` (see docs/configuration.md and docs/models.md). */
import { runService } from '@faceprint/service-kit';
import { loadTrainerConfig } from './trainer-config.js';
import { trainerService } from './trainer-service.js';

await runService('trainer', ({ env, log }) => trainerService(loadTrainerConfig(env), { log }));
