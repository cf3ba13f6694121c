/** The matcher process: `npm start -w @faceprint/matcher` (see the README for its settings). */
import { runService } from '@faceprint/service-kit';
import { matcherService } from './matcher-service.js';

await runService('matcher', () => ({ services: matcherService() }));
