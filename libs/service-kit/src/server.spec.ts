import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DetectorService } from '@faceprint/contracts/detector';
import { EmbedderService } from '@faceprint/contracts/embedder';
import { FaceService } from '@faceprint/contracts/gateway';
import { JobState, TrainerService } from '@faceprint/contracts/trainer';
import { bufCurl, listServices, ServingStatus, watchHealthUntil } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { createClient } from './client.js';
import { loadServerConfig } from './config.js';
import { FaceprintError } from './errors.js';
import { implement, type CallContext, type ServiceClient } from './rpc-types.js';
import type { FaceprintServer } from './server.js';
import { memoryLogger, startTestServer } from './test-support.js';
import { validateDetectRequest } from './validation.js';

const servers: FaceprintServer[] = [];
const clients: { close(): void }[] = [];
after(async () => {
  clients.forEach((client) => client.close());
  await Promise.all(servers.map((server) => server.shutdown()));
});

async function serve(...args: Parameters<typeof startTestServer>): Promise<FaceprintServer> {
  const server = await startTestServer(...args);
  servers.push(server);
  return server;
}

function connect<S extends Parameters<typeof createClient>[0]>(service: S, address: string, options?: Parameters<typeof createClient>[2]): ServiceClient<S> {
  const client = createClient(service, address, options);
  clients.push(client);
  return client;
}

/** Rejects with the FaceprintError the call failed with. */
async function failure(call: Promise<unknown>): Promise<FaceprintError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof FaceprintError, `expected a FaceprintError, got ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

const image = { content: new Uint8Array([0xff, 0xd8, 0xff]) };

describe('health', () => {
  it('reports NOT_SERVING until ready, SERVING when ready, NOT_SERVING while draining', async () => {
    const server = await startTestServer([implement(DetectorService, {})], { FACEPRINT_DRAIN_DELAY_MS: '400' });
    let sawServing = false;
    const watched = watchHealthUntil(server.address, (s) => {
      sawServing ||= s === ServingStatus.SERVING;
      return sawServing && s === ServingStatus.NOT_SERVING;
    }, DetectorService.typeName);
    await sleep(200);
    server.setServing(true);
    await sleep(200);
    const stopped = server.shutdown();
    assert.deepEqual(await watched, [ServingStatus.NOT_SERVING, ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    assert.equal(server.state, 'DRAINING');
    await stopped;
    assert.equal(server.state, 'STOPPED');
  });
});

describe('reflection', () => {
  it('lists every service of the process and the health service', async () => {
    const server = await serve([implement(DetectorService, {}), implement(TrainerService, {})]);
    assert.deepEqual(await listServices(server.address), [
      'faceprint.detector.v1.DetectorService',
      'faceprint.trainer.v1.TrainerService',
      'grpc.health.v1.Health',
    ]);
  });

  it('describes messages well enough for a reflection client to call an rpc', async () => {
    const server = await serve([implement(DetectorService, { detect: async (request) => (validateDetectRequest(request), {}) })]);
    const result = await bufCurl(server.address, 'faceprint.detector.v1.DetectorService/Detect', { image: { content: '' } });
    assert.equal(result.ok, false);
    assert.match(result.output, /invalid_argument/);
    assert.match(result.output, /image\.content: must not be empty/);
  });
});

describe('errors', () => {
  it('answers INVALID_ARGUMENT with a field violation per bad field', async () => {
    const server = await serve([implement(DetectorService, { detect: async (request) => (validateDetectRequest(request), {}) })]);
    const detector = connect(DetectorService, server.address);
    const error = await failure(detector.detect({ image: { content: new Uint8Array() }, options: { scoreThreshold: 1.5, maxFaces: 0 } }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.deepEqual(error.fieldViolations.map((v) => v.field), ['image.content', 'options.score_threshold', 'options.max_faces']);
  });

  it('answers UNIMPLEMENTED, naming the rpc, for a handler a service does not have yet', async () => {
    const server = await serve([implement(TrainerService, {})]);
    const error = await failure(connect(TrainerService, server.address).getJob({ jobId: 'j-1' }));
    assert.equal(error.code, status.UNIMPLEMENTED);
    assert.match(error.message, /faceprint\.trainer\.v1\.TrainerService\/GetJob/);
  });

  it('logs an internal cause on the server and sends the client only "internal error"', async () => {
    const { log, lines } = memoryLogger();
    const server = await serve(
      [implement(TrainerService, { listModels: async () => Promise.reject(new Error('registry at /secret/path unreadable')) })],
      {},
      log,
    );
    const error = await failure(connect(TrainerService, server.address, { retry: false }).listModels({}));
    assert.equal(error.code, status.INTERNAL);
    assert.equal(error.message, 'internal error');
    const logged = lines().find((line) => line.msg === 'rpc failed');
    assert.equal(logged?.code, 'INTERNAL');
    assert.match(JSON.stringify(logged), /registry at \/secret\/path unreadable/);
  });
});

describe('deadlines', () => {
  it('propagates the caller deadline downstream, cancels the downstream call and answers DEADLINE_EXCEEDED', async () => {
    let downstreamCall: { deadline: Date | undefined; aborted: Promise<unknown> } | undefined;
    const detectorServer = await serve([
      implement(DetectorService, {
        detect: async (_request, ctx) => {
          const aborted = once(ctx.signal, 'abort').then(() => (ctx.signal.reason as FaceprintError).code);
          downstreamCall = { deadline: ctx.deadline, aborted };
          await aborted;
          return {};
        },
      }),
    ]);
    const detector = connect(DetectorService, detectorServer.address, { defaultTimeoutMs: 60_000 });
    const gatewayServer = await serve([
      implement(FaceService, {
        detect: async (request, ctx: CallContext) => {
          await detector.detect({ image: request.image }, { parent: ctx });
          return {};
        },
      }),
    ]);
    const gateway = connect(FaceService, gatewayServer.address);

    const sent = Date.now();
    const error = await failure(gateway.detect({ image }, { timeoutMs: 300 }));
    assert.equal(error.code, status.DEADLINE_EXCEEDED);
    assert.ok(downstreamCall, 'the gateway called the detector');
    const downstreamBudget = downstreamCall.deadline!.getTime() - sent;
    assert.ok(downstreamBudget <= 400, `the detector's deadline is the caller's 300 ms, not the client's 60 s (got ${downstreamBudget} ms)`);
    const reason = await Promise.race([downstreamCall.aborted, sleep(2_000, 'still running')]);
    assert.ok(reason === status.DEADLINE_EXCEEDED || reason === status.CANCELLED, `the downstream handler was stopped (got ${String(reason)})`);
  });
});

describe('retries', () => {
  it('retries an idempotent rpc on UNAVAILABLE and never retries a non-idempotent one', async () => {
    let listAttempts = 0;
    let evaluateAttempts = 0;
    const server = await serve([
      implement(TrainerService, {
        listModels: async () => {
          listAttempts += 1;
          if (listAttempts < 3) throw FaceprintError.unavailable('registry not mounted yet');
          return { models: [{ name: 'yunet-n', currentVersion: 1 }] };
        },
        evaluateModel: async () => {
          evaluateAttempts += 1;
          throw FaceprintError.unavailable('job queue not ready');
        },
      }),
    ]);
    const trainer = connect(TrainerService, server.address);
    const listed = await trainer.listModels({});
    assert.equal(listed.models[0]?.name, 'yunet-n');
    assert.equal(listAttempts, 3);

    const error = await failure(trainer.evaluateModel({ dataset: 'lfw-view2' }));
    assert.equal(error.code, status.UNAVAILABLE);
    assert.equal(evaluateAttempts, 1);
  });
});

describe('streaming', () => {
  it('serves server-streaming and bidirectional rpcs', async () => {
    const server = await serve([
      implement(TrainerService, {
        async *watchJob(request) {
          for (const step of [1n, 2n, 3n]) yield { job: { jobId: request.jobId, state: JobState.RUNNING, progress: { step, totalSteps: 3n } } };
        },
      }),
      implement(EmbedderService, {
        async *embedStream(requests) {
          for await (const request of requests) yield { itemId: request.itemId, embedding: { dim: 128 } };
        },
      }),
    ]);
    const steps: bigint[] = [];
    for await (const update of connect(TrainerService, server.address).watchJob({ jobId: 'j-7' })) steps.push(update.job!.progress!.step);
    assert.deepEqual(steps, [1n, 2n, 3n]);

    async function* items() {
      for (const itemId of ['a', 'b', 'c']) yield { itemId };
    }
    const echoed: string[] = [];
    for await (const response of connect(EmbedderService, server.address).embedStream(items())) echoed.push(response.itemId);
    assert.deepEqual(echoed, ['a', 'b', 'c']);
  });
});

describe('limits and stream errors', () => {
  it('refuses a message above the configured size with RESOURCE_EXHAUSTED', async () => {
    const server = await serve([implement(DetectorService, { detect: async () => ({}) })], { FACEPRINT_GRPC_MAX_MESSAGE_BYTES: String(4 * 1024 * 1024) });
    const detector = connect(DetectorService, server.address, { retry: false });
    const error = await failure(detector.detect({ image: { content: new Uint8Array(5 * 1024 * 1024) } }));
    assert.equal(error.code, status.RESOURCE_EXHAUSTED);
    assert.deepEqual(await detector.detect({ image: { content: new Uint8Array(1024) } }), await detector.detect({ image }));
  });

  it('ends a response stream with the handler error after the messages already sent', async () => {
    const server = await serve([
      implement(TrainerService, {
        async *watchJob(request) {
          yield { job: { jobId: request.jobId, state: JobState.RUNNING } };
          throw FaceprintError.notFound('job', request.jobId);
        },
      }),
    ]);
    const received: string[] = [];
    const error = await failure(
      (async () => {
        for await (const update of connect(TrainerService, server.address).watchJob({ jobId: 'j-9' })) received.push(update.job!.jobId);
      })(),
    );
    assert.deepEqual(received, ['j-9']);
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.details[0]?.$typeName, 'google.rpc.ResourceInfo');
  });
});

describe('graceful drain', () => {
  it('lets an in-flight call finish, then refuses new calls', async () => {
    const server = await startTestServer([
      implement(DetectorService, { detect: async () => (await sleep(500), { faces: [{ score: 0.5 }] }) }),
    ]);
    server.setServing(true);
    const detector = connect(DetectorService, server.address, { retry: false });
    const inFlight = detector.detect({ image });
    await sleep(100);
    const stopped = server.shutdown();
    assert.equal((await inFlight).faces[0]?.score, 0.5);
    await stopped;
    const error = await failure(detector.detect({ image }, { timeoutMs: 1_000 }));
    assert.ok([status.UNAVAILABLE, status.DEADLINE_EXCEEDED].includes(error.code), `refused after stop (got ${status[error.code]})`);
  });

  it('cancels calls still running when the grace time is over', async () => {
    const server = await startTestServer(
      [implement(DetectorService, { detect: async (_request, ctx) => (await sleep(10_000, undefined, { signal: ctx.signal }), {}) })],
      { FACEPRINT_SHUTDOWN_GRACE_MS: '300' },
    );
    const detector = connect(DetectorService, server.address, { retry: false });
    const inFlight = failure(detector.detect({ image }));
    await sleep(100);
    const started = Date.now();
    await server.shutdown();
    assert.ok(Date.now() - started < 2_000, 'shutdown did not wait for the 10 s handler');
    assert.ok([status.CANCELLED, status.UNAVAILABLE].includes((await inFlight).code));
  });
});

describe('HTTP/2 flow control', () => {
  /** A raw HTTP/2 session to `address`, once it has the server's settings and first window update. */
  async function windows(address: string) {
    const session = http2.connect(`http://${address}`);
    await once(session, 'remoteSettings');
    await sleep(100); // the connection-level WINDOW_UPDATE follows the settings
    const result = { stream: session.remoteSettings.initialWindowSize, connection: session.state.remoteWindowSize };
    session.close();
    return result;
  }

  it('gives every stream and connection an 8 MiB receive window, so that large messages do not crawl 64 KiB at a time', async () => {
    assert.deepEqual(await windows((await serve([implement(EmbedderService, {})])).address), { stream: 8 * 1024 * 1024, connection: 8 * 1024 * 1024 });
    assert.deepEqual(await windows((await serve([implement(EmbedderService, {})], { FACEPRINT_GRPC_FLOW_CONTROL_WINDOW_BYTES: '524288' })).address), { stream: 524288, connection: 524288 });
    assert.deepEqual(await windows((await serve([implement(EmbedderService, {})], { FACEPRINT_GRPC_STREAM_WINDOW_BYTES: '1048576' })).address), { stream: 1048576, connection: 8 * 1024 * 1024 });
  });

  it("gives the gateway's streams 1 MiB windows, so that calls waiting for the request byte budget hold little unread", () => {
    assert.equal(loadServerConfig('gateway', {}).streamWindowBytes, 1024 * 1024);
    assert.equal(loadServerConfig('embedder', {}).streamWindowBytes, 8 * 1024 * 1024);
  });
});
