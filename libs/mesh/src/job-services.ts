/**
 * The services a job (an eval command, a benchmark) talks to: a running deployment (a target
 * host, default ports), or processes the job starts for itself on free loopback ports and stops
 * when done.
 */
import type { ServiceName } from '@faceprint/contracts';
import { buildModelRegistry, waitForServiceProcess } from './local-mesh.js';
import { startServiceProcess, type ServiceProcess } from './service-process.js';
import { DEFAULT_GRPC_PORTS } from '@faceprint/service-kit';

/** Addresses of the services a command uses, and how to release them. */
export interface Services {
  readonly addresses: Readonly<Partial<Record<ServiceName, string>>>;
  /** Process ids of the services this command started (none for a target). */
  readonly pids: Readonly<Partial<Record<ServiceName, number>>>;
  /** Whether this command started them (and so chose their settings). */
  readonly started: boolean;
  stop(): Promise<void>;
}

/**
 * A job's own services run without the TLS settings of the process that starts them (a trainer
 * in the mesh has them): they are private to the job, on loopback, hold no gallery data, and the
 * job calls them as plain clients. Nor do they take its health-only port (FACEPRINT_HEALTH_PORT,
 * set for a whole pod in Kubernetes): that port is the starting process's, one per pod.
 */
const NOT_INHERITED = Object.fromEntries(
  ['FACEPRINT_TLS_CERT_FILE', 'FACEPRINT_TLS_KEY_FILE', 'FACEPRINT_TLS_CLIENT_CA_FILE', 'FACEPRINT_TLS_CA_FILE', 'FACEPRINT_TLS_CLIENT_CERT_FILE', 'FACEPRINT_TLS_CLIENT_KEY_FILE', 'FACEPRINT_HEALTH_PORT'].map((name) => [name, '']),
);

/**
 * Connects to `target` (a host), or starts `names` as local processes with `env`, after making
 * sure the model registry holds the default models.
 */
export async function acquireServices(names: readonly ServiceName[], target: string | undefined, env: Record<string, string> = {}): Promise<Services> {
  if (target) {
    return { addresses: Object.fromEntries(names.map((n) => [n, `${target}:${DEFAULT_GRPC_PORTS[n]}`])), pids: {}, started: false, stop: async () => undefined };
  }
  if (!(await buildModelRegistry(env))) throw new Error('the model registry could not be built (see above)');
  const processes: ServiceProcess[] = [];
  const stop = async () => {
    await Promise.all(processes.map((p) => p.stop()));
  };
  try {
    for (const name of names) {
      processes.push(await startServiceProcess(name, { env: { FACEPRINT_GRPC_PORT: '0', FACEPRINT_METRICS_PORT: '0', ...NOT_INHERITED, ...env } }));
    }
    await Promise.all(processes.map((p) => waitForServiceProcess(p, Date.now() + 120_000)));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    addresses: Object.fromEntries(processes.map((p) => [p.name, p.address])),
    pids: Object.fromEntries(processes.map((p) => [p.name, p.pid])),
    started: true,
    stop,
  };
}

/** Runs `work` over `items` with at most `concurrency` at a time, in order of completion. */
export async function forEachConcurrently<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
