import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DetectorService } from '@faceprint/contracts/detector';
import { EmbedderService } from '@faceprint/contracts/embedder';
import { checkHealth, ServingStatus } from '@faceprint/testing';
import { createClient } from './client.js';
import { ByteBudget } from './request-byte-budget.js';
import { implement } from './rpc-types.js';
import type { FaceprintServer } from './server.js';
import { startTestServer } from './test-support.js';

const MIB = 1024 * 1024;
const servers: FaceprintServer[] = [];
after(() => Promise.all(servers.map((server) => server.shutdown())));

describe('ByteBudget', () => {
  it('grants in arrival order, lets a request larger than the budget run alone, and forgets a withdrawn one', () => {
    const budget = new ByteBudget(10);
    const granted: string[] = [];
    budget.reserve(6, () => granted.push('a'));
    budget.reserve(6, () => granted.push('b'));
    const withdraw = budget.reserve(1, () => granted.push('c'));
    assert.deepEqual(granted, ['a'], 'b waits for room and c waits behind b, although c would fit');
    withdraw();
    budget.release(6);
    assert.deepEqual(granted, ['a', 'b']);
    budget.reserve(50, () => granted.push('huge'));
    budget.release(6);
    assert.deepEqual(granted, ['a', 'b', 'huge'], 'with nothing else held, a request over the whole budget runs');
    assert.equal(budget.used, 50);
  });
});

describe('request byte budget on a server', () => {
  it('defers reading a unary request while the budget is spent, keeps health answering, and reads it once a call ends', async () => {
    // A budget of one largest message (4 MiB): a call holding its 1 MiB request leaves no room for
    // a second read's 4 MiB reservation.
    const entered: number[] = [];
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    const server = await startTestServer(
      [
        implement(DetectorService, {
          async detect(request) {
            const n = request.image!.content[0]!;
            entered.push(n);
            if (n === 1) await firstHeld;
            return {};
          },
        }),
      ],
      { FACEPRINT_GRPC_MAX_MESSAGE_BYTES: String(4 * MIB), FACEPRINT_GRPC_REQUEST_BYTES_IN_FLIGHT: String(4 * MIB) },
    );
    servers.push(server);
    server.setServing(true);
    const client = createClient(DetectorService, server.address, { retry: false });
    const request = (n: number) => {
      const content = new Uint8Array(MIB);
      content[0] = n;
      return client.detect({ image: { content } });
    };
    const first = request(1);
    await waitFor(() => entered.length === 1);
    const second = request(2);
    await sleep(300);
    assert.deepEqual(entered, [1], 'the second request is not read while the first holds the budget');
    assert.equal(await checkHealth(server.address), ServingStatus.SERVING, 'health is exempt');
    releaseFirst();
    await Promise.all([first, second]);
    assert.deepEqual(entered, [1, 2]);
    client.close();
  });

  it('does not let an idle request stream hold the budget', async () => {
    const server = await startTestServer(
      [
        implement(EmbedderService, {
          async *embedStream(requests) {
            for await (const _ of requests) yield {};
          },
        }),
        implement(DetectorService, { detect: async () => ({}) }),
      ],
      { FACEPRINT_GRPC_MAX_MESSAGE_BYTES: String(4 * MIB), FACEPRINT_GRPC_REQUEST_BYTES_IN_FLIGHT: String(4 * MIB) },
    );
    servers.push(server);
    const embedder = createClient(EmbedderService, server.address, { retry: false });
    const detector = createClient(DetectorService, server.address, { retry: false, defaultTimeoutMs: 5_000 });
    // Open streams that send nothing: each waits for its first message, reserving nothing.
    const idle = new AbortController();
    const streams = Array.from({ length: 4 }, () => {
      // eslint-disable-next-line require-yield -- a stream that never sends
      const requests = (async function* () {
        await new Promise((resolve) => idle.signal.addEventListener('abort', resolve));
      })();
      return (async () => {
        try {
          for await (const _ of embedder.embedStream(requests, { signal: idle.signal })) {
            /* nothing is sent, so nothing comes back */
          }
        } catch {
          /* cancelled at the end of the test */
        }
      })();
    });
    await sleep(200);
    await detector.detect({ image: { content: new Uint8Array(MIB) } });
    idle.abort();
    await Promise.all(streams);
    embedder.close();
    detector.close();
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('timed out waiting');
    await sleep(10);
  }
}
