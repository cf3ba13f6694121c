/**
 * The checks every service process must pass, shared by each service's `main.spec.ts`: it starts
 * as its own process, reports SERVING, lists exactly its services through reflection, answers
 * every rpc with a status (never a crash or a hang), refuses a bad configuration naming the
 * variable, and exits 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SERVICES_BY_PROCESS, type ServiceName } from '@faceprint/contracts';
import { createClient, EXIT_CONFIG, FaceprintError } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import { checkHealth, ServingStatus, watchHealthUntil } from './health.js';
import { listServices } from './reflection.js';
import { waitForServiceProcess } from '@faceprint/mesh';
import { runServiceToExit, spawnService, type ServiceProcess } from './services.js';

/** Calls one rpc with an empty request and returns the status code it answered with. */
async function callWithEmptyRequest(client: Record<string, unknown>, localName: string, kind: string): Promise<status> {
  const method = client[localName] as (arg: unknown, options: object) => unknown;
  const options = { timeoutMs: 5_000 };
  try {
    if (kind === 'unary' || kind === 'client_streaming') {
      await (kind === 'unary' ? method({}, options) : method((async function* () {})(), options));
    } else {
      const stream = method(kind === 'server_streaming' ? {} : (async function* () {})(), options) as AsyncIterable<unknown>;
      for await (const _ of stream) break;
    }
    return status.OK;
  } catch (error) {
    assert.ok(error instanceof FaceprintError, `rpc ${localName} failed with ${String(error)}`);
    return error.code;
  }
}

/** Options of {@link describeServiceProcess}. */
export interface ProcessCheckOptions {
  /** The status an empty request must get, by rpc local name; every other rpc must answer UNIMPLEMENTED. */
  readonly expected?: Readonly<Record<string, status>>;
  /** Extra environment for the process. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * The service needs others that these checks do not start (the gateway): alone, its services
   * report NOT_SERVING (not ready) while the server as a whole is SERVING (alive).
   */
  readonly notReadyAlone?: boolean;
}

/** Registers the standard process checks for `name`. */
export function describeServiceProcess(name: ServiceName, options: ProcessCheckOptions = {}): void {
  const expected = options.expected ?? {};
  describe(`${name} process`, () => {
    let service: ServiceProcess;
    before(async () => {
      service = await spawnService(name, { ...options.env });
      await waitForServiceProcess(service, Date.now() + 60_000);
    });
    after(async () => {
      await service?.stop();
    });

    it(options.notReadyAlone ? 'reports SERVING for the server, and NOT_SERVING for its services without those they need' : 'reports SERVING for the server and each of its services', async () => {
      assert.equal(await checkHealth(service.address), ServingStatus.SERVING);
      for (const desc of SERVICES_BY_PROCESS[name]) {
        if (options.notReadyAlone) {
          // Its first readiness check runs as it starts serving: watched until it has answered.
          const seen = await watchHealthUntil(service.address, (s) => s === ServingStatus.NOT_SERVING, desc.typeName, 10_000);
          assert.equal(seen.at(-1), ServingStatus.NOT_SERVING, desc.typeName);
        } else {
          assert.equal(await checkHealth(service.address, desc.typeName), ServingStatus.SERVING, desc.typeName);
        }
      }
    });

    it('lists exactly its services and health through reflection', async () => {
      const names = SERVICES_BY_PROCESS[name].map((desc) => desc.typeName);
      assert.deepEqual(await listServices(service.address), [...names, 'grpc.health.v1.Health'].sort());
    });

    it('answers every rpc with a clear status', async () => {
      for (const desc of SERVICES_BY_PROCESS[name]) {
        const client = createClient(desc, service.address, { retry: false }) as unknown as Record<string, unknown> & { close(): void };
        try {
          for (const method of desc.methods) {
            const code = await callWithEmptyRequest(client, method.localName, method.methodKind);
            const want = expected[method.localName] ?? status.UNIMPLEMENTED;
            assert.equal(status[code], status[want], `${desc.typeName}/${method.name}`);
          }
        } finally {
          client.close();
        }
      }
    });

    it('drains and exits 0 on SIGTERM', async () => {
      const exit = await service.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(service.logs.some((line) => line.msg === 'stopped'));
    });

    it('refuses to start on a bad setting and names the variable', async () => {
      const exit = await runServiceToExit(name, { ...options.env, FACEPRINT_GRPC_PORT: 'eighty', FACEPRINT_METRICS_PORT: '0' });
      assert.equal(exit.code, EXIT_CONFIG);
      assert.match(exit.output, /FACEPRINT_GRPC_PORT: must be an integer between 0 and 65535, got \\"eighty\\"/);
    });
  });
}
