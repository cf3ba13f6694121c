/** The gateway process: `npm start -w @faceprint/gateway` (see docs/configuration.md and docs/gateway.md). */
import { runService } from '@faceprint/service-kit';
import { loadGatewayConfig } from './gateway-config.js';
import { gatewayService } from './gateway-service.js';

await runService('gateway', ({ env, log }) => gatewayService(loadGatewayConfig(env), { log }));
