/**
 * The gRPC server every faceprint service runs: the service's handlers plus the standard health
 * service (`grpc.health.v1`, NOT_SERVING until the service says it is ready) and server
 * reflection, message-size and keepalive limits from config, and a graceful drain:
 *
 *   SERVING -> shutdown() -> health NOT_SERVING for `drainDelayMs` (load balancers move away,
 *   new calls still served) -> stop accepting, in-flight calls finish within `shutdownGraceMs`
 *   -> remaining calls cancelled -> STOPPED.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { toBinary, type DescFile, type DescMethod } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { faceprintMeter, type Logger } from '@faceprint/telemetry';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import type { ServerConfig } from './config.js';
import { setServerConnectionWindow, setServerStreamWindow } from './flow-control.js';
import { grpcHandlers, grpcServiceDefinition } from './grpc-adapter.js';
import { HealthStatuses, ServingStatus } from './health.js';
import { ByteBudget, requestByteBudget } from './request-byte-budget.js';
import type { ServiceRegistration } from './rpc-types.js';
import { serverCredentials, type PemReload } from './tls.js';

/** The lifecycle of a server. */
export type ServerState = 'STARTING' | 'SERVING' | 'DRAINING' | 'STOPPED';

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** The compiled server settings. */
  readonly config: ServerConfig;
  /** The services this process serves. */
  readonly services: readonly ServiceRegistration[];
  /** The process logger. */
  readonly log: Logger;
}

/** A running faceprint gRPC server. */
export interface FaceprintServer {
  /** The bound port (useful when the configured port is 0). */
  readonly port: number;
  /** `host:port` to dial. */
  readonly address: string;
  /** The bound port of the plaintext health-only listener (`FACEPRINT_HEALTH_PORT`), if there is one. */
  readonly healthPort: number | undefined;
  /** The current lifecycle state. */
  readonly state: ServerState;
  /** Reports SERVING (ready) or NOT_SERVING on the health service, for the server and each service. */
  setServing(serving: boolean): void;
  /**
   * Readiness while serving: NOT_SERVING for each of the process's services (not for the server
   * as a whole, "", which liveness probes ask) while something it needs is missing.
   */
  setReady(ready: boolean): void;
  /** Drains and stops the server (idempotent; resolves when stopped). */
  shutdown(): Promise<void>;
}

/** The serialised file descriptors of `files` and everything they import. */
function fileDescriptorClosure(files: readonly DescFile[]): Buffer[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (seen.has(file.name)) return;
    seen.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  files.forEach(visit);
  return [...seen.values()].map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
}

/** Starts a gRPC server with health (NOT_SERVING until `setServing(true)`) and reflection. */
export async function startServer(options: ServerOptions): Promise<FaceprintServer> {
  const { config, services, log } = options;
  const server = new Server({
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_send_message_length': config.maxMessageBytes,
    'grpc.keepalive_time_ms': config.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': config.keepaliveTimeoutMs,
    // Read by grpc-js once grpc/grpc-node#3058 lands; until then flow-control.ts sets the windows.
    'grpc-node.flow_control_window': config.flowControlWindowBytes,
    interceptors: [requestByteBudget(new ByteBudget(config.requestBytesInFlight), config.maxMessageBytes)],
  });
  const streamWindowSet = setServerStreamWindow(server, config.streamWindowBytes);

  const duration = faceprintMeter().createHistogram('faceprint.rpc.server.duration', {
    description: 'Duration of gRPC calls served, by method and status code',
    unit: 'ms',
  });
  const observe = (method: DescMethod, code: status, ms: number) =>
    duration.record(ms, { 'rpc.service': method.parent.typeName, 'rpc.method': method.name, 'rpc.grpc.status_code': status[code] });

  const health = new HealthStatuses(['', ...services.map((s) => s.service.typeName)], ServingStatus.NOT_SERVING);
  const healthRegistration = health.registration();
  const registrations = [...services, healthRegistration];
  const mutualTls = Boolean(config.tls?.clientCaFile);
  for (const registration of registrations) {
    if (registration.callers && !mutualTls) {
      log.warn({ service: registration.service.typeName }, 'serving without mutual TLS: this service trusts any caller that can reach it (set FACEPRINT_TLS_CERT_FILE, FACEPRINT_TLS_KEY_FILE and FACEPRINT_TLS_CLIENT_CA_FILE; docs/deploy.md)');
    }
    server.addService(grpcServiceDefinition(registration.service), grpcHandlers(registration, { log, observe, mutualTls }));
  }

  // @grpc/reflection reads `fileDescriptorProtos` from the values of a proto-loader package
  // definition; one entry carrying the descriptors of every registered service is enough.
  const descriptors = fileDescriptorClosure(registrations.map((r) => r.service.file));
  const reflectionPackage = { faceprint: { fileDescriptorProtos: descriptors } };
  new ReflectionService(reflectionPackage as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);

  const bind = (target: Server, listenPort: number, credentials: ServerCredentials) =>
    new Promise<number>((resolve, reject) => target.bindAsync(`${config.host}:${listenPort}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound))));
  const onTlsReload = (outcome: PemReload) =>
    'problem' in outcome ? log.error({ problem: outcome.problem }, 'TLS files could not be reloaded') : log.info('TLS certificates reloaded: new connections use them');
  const port = await bind(server, config.port, serverCredentials(config.tls, onTlsReload));
  // Health alone, in plaintext, for probes that cannot present a client certificate: it says
  // whether the service is ready, and nothing else is reachable through it.
  let healthServer: Server | undefined;
  let healthPort: number | undefined;
  if (config.healthPort !== undefined) {
    healthServer = new Server();
    healthServer.addService(grpcServiceDefinition(healthRegistration.service), grpcHandlers(healthRegistration, { log, observe, mutualTls: false }));
    healthPort = await bind(healthServer, config.healthPort, ServerCredentials.createInsecure()).catch((error: unknown) => {
      server.forceShutdown(); // the service port is not left bound by a server that failed to start
      throw error;
    });
  }
  if (!streamWindowSet || !setServerConnectionWindow(server, config.flowControlWindowBytes)) {
    log.warn({ flowControlWindowBytes: config.flowControlWindowBytes, streamWindowBytes: config.streamWindowBytes }, 'this grpc-js version cannot take a larger HTTP/2 receive window: large messages will move 64 KiB at a time');
  }
  const address = `${config.host.includes(':') ? `[${config.host}]` : config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;

  let state: ServerState = 'STARTING';
  let stopping: Promise<void> | undefined;

  const drainAndStop = async () => {
    state = 'DRAINING';
    health.setAll(ServingStatus.NOT_SERVING);
    log.info({ drainDelayMs: config.drainDelayMs, graceMs: config.shutdownGraceMs }, 'draining');
    if (config.drainDelayMs > 0) await sleep(config.drainDelayMs);
    health.closeWatches(); // open Watch streams would otherwise hold the drain for the whole grace time
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        log.warn('shutdown grace time over; cancelling in-flight calls');
        server.forceShutdown();
        resolve();
      }, config.shutdownGraceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    healthServer?.forceShutdown();
    state = 'STOPPED';
    log.info('stopped');
  };

  return {
    port,
    address,
    healthPort,
    get state() {
      return state;
    },
    setServing(serving: boolean) {
      if (state === 'DRAINING' || state === 'STOPPED') return;
      state = serving ? 'SERVING' : 'STARTING';
      health.setAll(serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
      log.info({ serving }, 'health changed');
    },
    setReady(ready: boolean) {
      if (state !== 'SERVING') return;
      for (const registration of services) health.set(registration.service.typeName, ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    },
    shutdown() {
      stopping ??= drainAndStop();
      return stopping;
    },
  };
}
