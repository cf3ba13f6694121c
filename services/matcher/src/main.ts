/** The matcher process: `npm start -w @faceprint/matcher` (see docs/configuration.md and docs/matcher.md). */
import { runService } from '@faceprint/service-kit';
import { loadMatcherConfig } from './matcher-config.js';
import { matcherService } from './matcher-service.js';

await runService('matcher', ({ env, log }) => matcherService(loadMatcherConfig(env), { log }));
