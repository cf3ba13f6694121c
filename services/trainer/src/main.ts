/** The trainer process: `npm start -w @faceprint/trainer` (see the README for its settings). */
import { runService } from '@faceprint/service-kit';
import { trainerService } from './trainer-service.js';

await runService('trainer', () => ({ services: trainerService() }));
