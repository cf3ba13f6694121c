/**
 * The whole mesh on one machine: every service as its own process on its default loopback port,
 * started together, reported once all are SERVING, and drained together.
 */
import { SERVICE_NAMES, type ServiceName } from '@faceprint/contracts';
import { Health, HealthCheckResponse_ServingStatus } from '@faceprint/contracts/health';
import { allInOrder, createClient, DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS } from '@faceprint/service-kit';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, startServiceProcess, type ServiceProcess } from './service-process.js';

/**
 * Imports the default models into the registry (`npm run models`), idempotently, with this
 * process's FACEPRINT_MODEL_REGISTRY and FACEPRINT_MODEL_MIRROR (or those of `env`). Its report goes to our standard
 * error, so that a command printing JSON keeps standard output clean.
 * Resolves true when every model is in place.
 */
export async function buildModelRegistry(env: Readonly<Record<string, string>> = {}): Promise<boolean> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/trainer/src/build-models.ts'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', process.stderr, process.stderr] });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code === 0;
}

/** Options of {@link startLocalMesh}. */
export interface LocalMeshOptions {
  /** Called with every line a service writes. */
  readonly onOutput?: (line: string) => void;
  /** How long to wait for every service to report SERVING. Default: 120 s. */
  readonly readyTimeoutMs?: number;
  /**
   * `default`: each service on its well-known gRPC and metrics port (what the CLI dials without
   * `--target`). `free`: ports the system picks, so that a test mesh never collides with a mesh
   * already running on this machine. Default: `default`.
   */
  readonly ports?: 'default' | 'free';
}

/** A running local mesh. */
export interface LocalMesh {
  /** `host:port` of each service. */
  readonly endpoints: Readonly<Record<ServiceName, string>>;
  /** Sends SIGTERM to every service and waits for all to exit (gateway first). */
  stop(): Promise<void>;
}

/** Polls the health service of `address` until it reports SERVING, failing after `deadline` (epoch ms). */
export async function waitUntilServing(address: string, deadline: number): Promise<void> {
  const health = createClient(Health, address, { defaultTimeoutMs: 2_000, retry: false });
  try {
    for (;;) {
      const status = await health.check({}).then((r) => r.status).catch(() => undefined);
      if (status === HealthCheckResponse_ServingStatus.SERVING) return;
      if (Date.now() > deadline) throw new Error(`${address} did not report SERVING in time`);
      await sleep(200);
    }
  } finally {
    health.close();
  }
}

/**
 * Waits until a service process reports SERVING; a process that exits first (a missing model,
 * say) fails at once with its output, instead of after the deadline.
 */
export async function waitForServiceProcess(service: ServiceProcess, deadline: number): Promise<void> {
  let serving = false;
  const exitedFirst = service.exited.then((exit) => {
    if (!serving) throw new Error(`${service.name} exited while starting (${JSON.stringify(exit)}):\n${service.output()}`);
  });
  await Promise.race([waitUntilServing(service.address, deadline), exitedFirst]);
  serving = true;
}

/** Starts every service (the gateway last, pointed at the others) and waits until all serve. */
export async function startLocalMesh(options: LocalMeshOptions = {}): Promise<LocalMesh> {
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  const started: ServiceProcess[] = [];
  const stop = async () => {
    // The gateway first, so that no new work reaches the services behind it.
    for (const process of [...started].reverse()) await process.stop();
  };
  const start = async (name: ServiceName, env: Record<string, string> = {}) => {
    const service = await startServiceProcess(name, {
      env: {
        FACEPRINT_GRPC_PORT: options.ports === 'free' ? '0' : String(DEFAULT_GRPC_PORTS[name]),
        FACEPRINT_METRICS_PORT: options.ports === 'free' ? '0' : String(DEFAULT_METRICS_PORTS[name]),
        ...env,
      },
      detached: true,
      ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    });
    started.push(service);
    return service; // listening; ready once waitForServiceProcess says so
  };
  try {
    // Each service is given the addresses of those it calls (with free ports they are known only
    // once those listen): the matcher the embedder's (re-embedding after a promotion), the
    // trainer the matcher's (consented gallery data), the gateway all four.
    // All settled before going on: a failure must not leave a sibling still starting, to be
    // pushed after the clean-up has run and left behind (the processes are detached).
    const [detector, aligner, embedder] = await allInOrder((['detector', 'aligner', 'embedder'] as const).map((name) => start(name)));
    const matcher = await start('matcher', { FACEPRINT_EMBEDDER_ADDRESS: embedder!.address });
    await start('trainer', { FACEPRINT_MATCHER_ADDRESS: matcher.address });
    await Promise.all(started.map((service) => waitForServiceProcess(service, deadline)));
    const gateway = await start('gateway', {
      FACEPRINT_DETECTOR_ADDRESS: detector!.address,
      FACEPRINT_ALIGNER_ADDRESS: aligner!.address,
      FACEPRINT_EMBEDDER_ADDRESS: embedder!.address,
      FACEPRINT_MATCHER_ADDRESS: matcher.address,
    });
    await waitForServiceProcess(gateway, deadline);
    const address = (name: ServiceName) => started.find((p) => p.name === name)!.address;
    const endpoints = Object.fromEntries(SERVICE_NAMES.map((name) => [name, address(name)])) as Record<ServiceName, string>;
    return { endpoints, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
