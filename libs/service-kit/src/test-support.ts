/** In-process server helpers for the kit's own tests. */
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '@faceprint/telemetry';
import { loadServerConfig } from './config.js';
import type { ServiceRegistration } from './rpc-types.js';
import { startServer, type FaceprintServer } from './server.js';

/** A logger whose JSON lines are kept in memory. */
export function memoryLogger(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return {
    log: createLogger({ service: 'test', level: 'debug', destination: stream }),
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** Starts a server on 127.0.0.1:0 with the real config loader and `env` overrides. */
export async function startTestServer(
  services: readonly ServiceRegistration[],
  env: Record<string, string> = {},
  log: Logger = createLogger({ service: 'test', level: 'silent' }),
): Promise<FaceprintServer> {
  const config = loadServerConfig('detector', { FACEPRINT_GRPC_PORT: '0', FACEPRINT_METRICS_PORT: '0', ...env });
  return startServer({ config, services, log });
}
