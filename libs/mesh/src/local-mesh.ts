/**
 * The whole mesh on one machine: every service as its own process on its default loopback port,
 * started together, reported once all are SERVING, and drained together. The services call each
 * other over mutual TLS with the mesh's own certificates (mesh-tls.ts): a local process without
 * one cannot call them; the gateway's public API stays plaintext on loopback, behind API keys.
 */
import { SERVICE_NAMES, type ServiceName } from '@faceprint/contracts';
import { Health, HealthCheckResponse_ServingStatus } from '@faceprint/contracts/health';
import { allInOrder, createClient, DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS } from '@faceprint/service-kit';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureMeshTls } from './mesh-certificates.js';
import { DEFAULT_MESH_TLS_DIR, type MeshTls } from './mesh-tls.js';
import { REPO_ROOT, startServiceProcess, type ServiceProcess } from './service-process.js';
import { Supervisor } from './supervisor.js';

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
  /** Where the mesh's certificates are (made there at the first start). Default: FACEPRINT_MESH_TLS_DIR, else `<repo>/data/mesh-tls`. */
  readonly tlsDir?: string;
}

/** A running local mesh. */
export interface LocalMesh {
  /** `host:port` of each service. */
  readonly endpoints: Readonly<Record<ServiceName, string>>;
  /** The mesh's certificates (to call a service as one of the mesh's identities). */
  readonly tls: MeshTls;
  /** The process id of a service now (it changes when the mesh restarts the service). */
  pid(name: ServiceName): number;
  /** Resolves once the mesh has given up restarting a service (it then stays down): the mesh has failed. */
  readonly failed: Promise<Error>;
  /** Sends SIGTERM to every service and waits for all to exit (gateway first). */
  stop(): Promise<void>;
}

/** Polls the health service of `address` until it reports SERVING, failing after `deadline` (epoch ms). */
export async function waitUntilServing(address: string, deadline: number, credentials?: ChannelCredentials): Promise<void> {
  // The mesh's certificates name `localhost`: checked against it, this process sends no IP address
  // as the TLS server name (which Node warns about, DEP0123; see QUIET_TLS_TO_IP for the services).
  const health = createClient(Health, address, { defaultTimeoutMs: 2_000, retry: false, ...(credentials ? { credentials, serverName: 'localhost' } : {}) });
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
export async function waitForServiceProcess(service: ServiceProcess, deadline: number, credentials?: ChannelCredentials): Promise<void> {
  let serving = false;
  const exitedFirst = service.exited.then((exit) => {
    if (!serving) throw new Error(`${service.name} exited while starting (${JSON.stringify(exit)}):\n${service.output()}`);
  });
  await Promise.race([waitUntilServing(service.address, deadline, credentials), exitedFirst]);
  serving = true;
}

/** Starts every service (the gateway last, pointed at the others) and waits until all serve. */
export async function startLocalMesh(options: LocalMeshOptions = {}): Promise<LocalMesh> {
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  const tls = await ensureMeshTls(options.tlsDir ?? (process.env.FACEPRINT_MESH_TLS_DIR || DEFAULT_MESH_TLS_DIR));
  const asMesh = await tls.credentials('cli');
  const started: ServiceProcess[] = [];
  const supervisors: Supervisor[] = [];
  const stop = async () => {
    // The gateway first, so that no new work reaches the services behind it.
    for (const stoppable of [...(supervisors.length > 0 ? supervisors : started)].reverse()) await stoppable.stop();
  };
  const envs = new Map<ServiceName, Record<string, string>>();
  const spawnService = (name: ServiceName, env: Record<string, string>) =>
    startServiceProcess(name, { env, detached: true, ...(options.onOutput ? { onOutput: options.onOutput } : {}) });
  const start = async (name: ServiceName, extra: Record<string, string> = {}) => {
    const env = {
      FACEPRINT_GRPC_PORT: options.ports === 'free' ? '0' : String(DEFAULT_GRPC_PORTS[name]),
      FACEPRINT_METRICS_PORT: options.ports === 'free' ? '0' : String(DEFAULT_METRICS_PORTS[name]),
      ...tls.serviceEnv(name),
      ...extra,
    };
    envs.set(name, env);
    const service = await spawnService(name, env);
    started.push(service);
    return service; // listening; ready once waitForServiceProcess says so
  };
  // Once all serve, a service that exits is started again on its port, where its callers find it.
  const supervise = (service: ServiceProcess) =>
    new Supervisor(service, {
      restart: async (port) => {
        const next = await spawnService(service.name, { ...envs.get(service.name), FACEPRINT_GRPC_PORT: String(port) });
        try {
          await waitForServiceProcess(next, Date.now() + 120_000, service.name === 'gateway' ? undefined : asMesh);
        } catch (error) {
          await next.stop();
          throw error;
        }
        return next;
      },
      report: (line) => (options.onOutput ?? ((text: string) => process.stderr.write(`${text}\n`)))(line),
    });
  try {
    // Each service is given the addresses of those it calls (with free ports they are known only
    // once those listen): the matcher the embedder's (re-embedding after a promotion), the
    // trainer the matcher's (consented gallery data), the gateway all five.
    // All settled before going on: a failure must not leave a sibling still starting, to be
    // pushed after the clean-up has run and left behind (the processes are detached).
    const [detector, aligner, embedder, liveness] = await allInOrder((['detector', 'aligner', 'embedder', 'liveness'] as const).map((name) => start(name)));
    const matcher = await start('matcher', { FACEPRINT_EMBEDDER_ADDRESS: embedder!.address });
    await start('trainer', { FACEPRINT_MATCHER_ADDRESS: matcher.address });
    await Promise.all(started.map((service) => waitForServiceProcess(service, deadline, asMesh)));
    const gateway = await start('gateway', {
      FACEPRINT_DETECTOR_ADDRESS: detector!.address,
      FACEPRINT_ALIGNER_ADDRESS: aligner!.address,
      FACEPRINT_EMBEDDER_ADDRESS: embedder!.address,
      FACEPRINT_MATCHER_ADDRESS: matcher.address,
      FACEPRINT_LIVENESS_ADDRESS: liveness!.address,
    });
    await waitForServiceProcess(gateway, deadline);
    supervisors.push(...started.map(supervise));
    const address = (name: ServiceName) => started.find((p) => p.name === name)!.address;
    const endpoints = Object.fromEntries(SERVICE_NAMES.map((name) => [name, address(name)])) as Record<ServiceName, string>;
    return {
      endpoints,
      tls,
      stop,
      pid: (name) => supervisors.find((s) => s.name === name)!.current.pid,
      failed: Promise.race(supervisors.map((s) => s.gaveUp)),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
