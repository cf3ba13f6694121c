/** The gateway process: `npm start -w @faceprint/gateway` (see the README for its settings). */
import { runService } from '@faceprint/service-kit';
import { connectDownstream } from './downstream.js';
import { loadGatewayConfig } from './gateway-config.js';
import { gatewayServices } from './gateway-service.js';

await runService('gateway', ({ env }) => {
  const downstream = connectDownstream(loadGatewayConfig(env));
  return { services: gatewayServices(downstream), close: async () => downstream.close() };
});
