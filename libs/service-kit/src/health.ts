/**
 * The standard gRPC health service (grpc.health.v1: Check, List, Watch).
 *
 * Written here rather than taken from grpc-health-check because a drain must end the open Watch
 * streams: that package offers no way to, so a server with a watching client (client-side health
 * checking, a mesh sidecar) would wait out its whole grace time on every shutdown.
 */
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '@faceprint/contracts/health';
import { FaceprintError } from './errors.js';
import { implement, type ServiceRegistration } from './rpc-types.js';

export { HealthCheckResponse_ServingStatus as ServingStatus } from '@faceprint/contracts/health';

interface Watcher {
  readonly service: string;
  readonly notify: () => void;
}

/** Health statuses by service name ("" = the whole server) and the Watch streams on them. */
export class HealthStatuses {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #watchers = new Set<Watcher>();
  #closed = false;

  /** Starts with every listed service at `initial`. */
  constructor(services: readonly string[], initial: ServingStatus) {
    services.forEach((service) => this.#statuses.set(service, initial));
  }

  /** Sets the status of `service` and tells its watchers. */
  set(service: string, status: ServingStatus): void {
    this.#statuses.set(service, status);
    for (const watcher of this.#watchers) if (watcher.service === service) watcher.notify();
  }

  /** Sets every known service to `status`. */
  setAll(status: ServingStatus): void {
    [...this.#statuses.keys()].forEach((service) => this.set(service, status));
  }

  /** Ends every Watch stream after its latest status has been sent; new watches end at once. */
  closeWatches(): void {
    this.#closed = true;
    this.#watchers.forEach((watcher) => watcher.notify());
  }

  /** The grpc.health.v1.Health service over these statuses. */
  registration(): ServiceRegistration {
    return implement(Health, {
      check: async ({ service }) => {
        const status = this.#statuses.get(service);
        if (status === undefined) throw FaceprintError.notFound('service', service);
        return { status };
      },
      list: async () => ({
        statuses: Object.fromEntries([...this.#statuses].map(([service, status]) => [service, { status }])),
      }),
      watch: ({ service }, ctx) => this.#watch(service, ctx.signal),
    });
  }

  async *#watch(service: string, signal: AbortSignal): AsyncGenerator<{ status: ServingStatus }> {
    // `changed` catches notifications that arrive while the generator is suspended at a yield.
    let changed: boolean;
    let wake: () => void = () => undefined;
    const watcher: Watcher = {
      service,
      notify: () => {
        changed = true;
        wake();
      },
    };
    this.#watchers.add(watcher);
    signal.addEventListener('abort', watcher.notify);
    try {
      let sent: ServingStatus | undefined;
      for (;;) {
        changed = false;
        const status = this.#statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (status !== sent) {
          yield { status };
          sent = status;
        }
        if (this.#closed || signal.aborted) return;
        if (!changed) await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.#watchers.delete(watcher);
      signal.removeEventListener('abort', watcher.notify);
    }
  }
}
