/** Service processes for tests: a free loopback port and no metrics endpoint, unless overridden. */
import type { ServiceName } from '@faceprint/contracts';
import { startServiceProcess, type ServiceProcess } from '@faceprint/mesh';

export { runServiceToExit, waitForServiceProcess, type LogLine, type ProcessExit, type ServiceProcess } from '@faceprint/mesh';

/** Starts `name` as its own process on 127.0.0.1:0 with `env` on top. */
export function spawnService(name: ServiceName, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startServiceProcess(name, { env: { FACEPRINT_GRPC_PORT: '0', FACEPRINT_METRICS_PORT: '0', ...env } });
}
