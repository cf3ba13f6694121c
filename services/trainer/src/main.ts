/** The trainer process: `npm start -w @faceprint/trainer` (see the README for its settings). */
import { runService } from '@faceprint/service-kit';
import { loadTrainerConfig } from './trainer-config.js';
import { trainerService } from './trainer-service.js';

await runService('trainer', ({ env }) => ({ services: trainerService(loadTrainerConfig(env)) }));
