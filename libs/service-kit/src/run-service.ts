/**
 * The process lifecycle of a service, in one place: compile config, create the logger, start
 * metrics and the server, install the SIGTERM/SIGINT hooks, report SERVING once the service is
 * ready, and on a signal drain, flush telemetry and exit.
 */
import type { ServiceName } from '@faceprint/contracts';
import { createLogger, shutdownMetrics, shutdownTracing, startMetrics, type Logger } from '@faceprint/telemetry';
import { ConfigError, loadServerConfig, type ServerConfig } from './config.js';
import type { ServiceRegistration } from './rpc-types.js';
import { startServer, type FaceprintServer } from './server.js';

/** What a service's setup returns. */
export interface ServiceSetup {
  /** The services this process serves. */
  readonly services: readonly ServiceRegistration[];
  /** Resolves when the service can really serve (models loaded and warmed up). Default: at once. */
  readonly ready?: () => Promise<void>;
  /** Releases the service's own resources after the server has drained. */
  readonly close?: () => Promise<void>;
  /**
   * What the service needs beyond itself, checked every `intervalMs` (default 2000) once it
   * serves: `check` resolves undefined when all is there, else what is missing. While something
   * is missing, each of the process's services reports NOT_SERVING (readiness), and the server as
   * a whole ("") stays SERVING (liveness: restarting this process would not help).
   */
  readonly readiness?: { readonly check: () => Promise<string | undefined>; readonly intervalMs?: number };
}

/** What a service's setup gets. */
export interface SetupContext {
  /** The shared server settings. */
  readonly config: ServerConfig;
  /** The process logger. */
  readonly log: Logger;
  /** The environment, to compile service-specific settings from (with `compileEnv`). */
  readonly env: NodeJS.ProcessEnv;
}

/** Exit status for an invalid configuration (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

/**
 * Runs `service` as this process's main job. Never resolves while the service runs; exits the
 * process after a drain (status 0), on an invalid configuration (78) or a start-up failure (1).
 */
export async function runService(service: ServiceName, setup: (context: SetupContext) => ServiceSetup | Promise<ServiceSetup>): Promise<FaceprintServer> {
  const env = process.env;
  let log = createLogger({ service });
  try {
    const config = loadServerConfig(service, env);
    log = createLogger({ service, level: config.logLevel });
    const serviceSetup = await setup({ config, log, env });
    await startMetrics({ serviceName: `faceprint-${service}`, port: config.metricsPort, host: config.metricsHost });
    const server = await startServer({ config, services: serviceSetup.services, log });
    log.info({ address: server.address, port: server.port, metricsPort: config.metricsPort }, 'listening');
    installSignalHooks(server, serviceSetup, log);
    await (serviceSetup.ready?.() ?? Promise.resolve());
    server.setServing(true);
    if (serviceSetup.readiness) watchReadiness(server, serviceSetup.readiness, log);
    return server;
  } catch (error) {
    if (error instanceof ConfigError) {
      log.fatal({ problems: error.problems }, error.message);
      process.exit(EXIT_CONFIG);
    }
    log.fatal({ err: error }, 'start-up failed');
    process.exit(1);
  }
}

/** Runs the readiness check at once and then on its interval, one at a time, and reports changes (logged once each). */
function watchReadiness(server: FaceprintServer, readiness: NonNullable<ServiceSetup['readiness']>, log: Logger): void {
  let missing: string | undefined;
  let running = false;
  const tick = () => {
    if (running || server.state !== 'SERVING') return;
    running = true;
    void readiness
      .check()
      .catch((error: unknown) => `readiness check failed: ${error instanceof Error ? error.message : String(error)}`)
      .then((now) => {
        if (now === missing) return;
        if (now) log.warn({ missing: now }, 'not ready: a service this one needs is not serving');
        else log.info({}, 'ready again: every service this one needs is serving');
        missing = now;
        server.setReady(now === undefined);
      })
      .finally(() => (running = false));
  };
  tick();
  setInterval(tick, readiness.intervalMs ?? 2_000).unref();
}

/** SIGTERM/SIGINT: drain once; a second signal during the drain exits at once. */
function installSignalHooks(server: FaceprintServer, setup: ServiceSetup, log: Logger): void {
  let draining = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      log.warn({ signal }, 'second signal during drain; exiting now');
      process.exit(1);
    }
    draining = true;
    log.info({ signal }, 'shutdown requested');
    void (async () => {
      let exitCode = 0;
      try {
        await server.shutdown();
        await setup.close?.();
      } catch (error) {
        log.error({ err: error }, 'shutdown failed');
        exitCode = 1;
      }
      await Promise.allSettled([shutdownTracing(), shutdownMetrics()]);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.exit(exitCode);
    })();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
