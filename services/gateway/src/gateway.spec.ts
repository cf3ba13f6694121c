import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DetectorService } from '@faceprint/contracts/detector';
import { FaceService } from '@faceprint/contracts/gateway';
import { createLogger } from '@faceprint/telemetry';
import { createClient, type FaceprintError, implement, loadServerConfig, startServer } from '@faceprint/service-kit';
import { waitUntilServing } from '@faceprint/mesh';
import { ServingStatus, spawnService, startOtlpReceiver, testModelRegistry, watchHealthUntil, type ServiceProcess } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { withKey, writeTestApiKeys } from './test-support.js';

const processes: ServiceProcess[] = [];
const apiKeys = writeTestApiKeys([{ id: 'ops', tenant: 'acme', roles: ['operator'] }]);
const keysEnv = { FACEPRINT_GATEWAY_API_KEYS_FILE: apiKeys.file };
const auth = withKey(apiKeys.keys.ops!);
after(async () => {
  await Promise.all(processes.map((p) => p.stop()));
});

/** Image bytes with a recognisable marker: they must never show up in logs or spans. */
const MARKER = 'FACEPRINT-IMAGE-MARKER-7f3a';
const image = { content: new TextEncoder().encode(MARKER) };

describe('gateway in the mesh', () => {
  it('exports one trace that spans the gateway and the detector, with no image bytes in spans or logs', async () => {
    const receiver = await startOtlpReceiver();
    const telemetryEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' };
    const detector = await spawnService('detector', { ...telemetryEnv, FACEPRINT_MODEL_REGISTRY: await testModelRegistry() });
    await waitUntilServing(detector.address, Date.now() + 60_000);
    const gateway = await spawnService('gateway', { ...telemetryEnv, ...keysEnv, FACEPRINT_DETECTOR_ADDRESS: detector.address });
    processes.push(detector, gateway);

    const client = createClient(FaceService, gateway.address);
    // The marker bytes are no image: the detector refuses them, and the gateway passes that on.
    await assert.rejects(client.detect({ image }, auth), (error: FaceprintError) => error.code === status.INVALID_ARGUMENT && error.fieldViolations[0]?.field === 'image.content');
    client.close();
    await Promise.all([gateway.stop(), detector.stop()]); // flushes the span processors
    await receiver.close();

    const gatewayServer = receiver.spans.find((s) => s.service === 'faceprint-gateway' && s.kind === 2 && s.name.endsWith('FaceService/Detect'));
    const gatewayClient = receiver.spans.find((s) => s.service === 'faceprint-gateway' && s.kind === 3 && s.name.endsWith('DetectorService/Detect'));
    const detectorServer = receiver.spans.find((s) => s.service === 'faceprint-detector' && s.kind === 2 && s.name.endsWith('DetectorService/Detect'));
    assert.ok(gatewayServer && gatewayClient && detectorServer, `spans received: ${JSON.stringify(receiver.spans)}`);
    assert.equal(gatewayClient.traceId, gatewayServer.traceId);
    assert.equal(detectorServer.traceId, gatewayServer.traceId);
    assert.equal(gatewayClient.parentSpanId, gatewayServer.spanId);
    assert.equal(detectorServer.parentSpanId, gatewayClient.spanId);

    const base64Marker = Buffer.from(MARKER).toString('base64');
    for (const text of [...receiver.bodies, gateway.output(), detector.output()]) {
      assert.ok(!text.includes(MARKER) && !text.includes(base64Marker), 'image bytes leaked');
    }
  });

  it('refuses what it can check before any image reaches the services behind it, and is not ready without them', async () => {
    // Nothing listens at the downstream addresses: a request that got past the checks would be UNAVAILABLE.
    const nowhere = '127.0.0.1:9';
    const gateway = await spawnService('gateway', { ...keysEnv, FACEPRINT_DETECTOR_ADDRESS: nowhere, FACEPRINT_ALIGNER_ADDRESS: nowhere, FACEPRINT_EMBEDDER_ADDRESS: nowhere, FACEPRINT_MATCHER_ADDRESS: nowhere, FACEPRINT_LIVENESS_ADDRESS: nowhere });
    processes.push(gateway);
    const client = createClient(FaceService, gateway.address, { retry: false });
    const refused = async (call: Promise<unknown>, field: string, why: RegExp) => {
      const error = (await call.then(() => assert.fail('accepted'), (e: unknown) => e)) as FaceprintError;
      assert.equal(status[error.code], 'INVALID_ARGUMENT', error.message);
      assert.ok(error.fieldViolations.some((f) => f.field === field && why.test(f.description)), `${field}: ${JSON.stringify(error.fieldViolations)}`);
    };
    const region = (x: number, y: number, width: number, height: number) => ({ image, faceRegion: { x, y, width, height } });
    await refused(client.identify({ image: region(Number.NaN, 0, 10, 10) }, auth), 'image.face_region', /finite/);
    await refused(client.identify({ image: region(-5, 0, 10, 10) }, auth), 'image.face_region', /0 or more/);
    await refused(client.identify({ image: region(0, 0, 0, 10) }, auth), 'image.face_region', /above 0/);
    await refused(client.verify({ subjectId: 'has spaces', image: { image } }, auth), 'subject_id', /\[A-Za-z0-9\._:@-\]/);
    await refused(client.verify({ subjectId: 'amy', image: { image }, targetFar: 2 }, auth), 'target_far', /\(0, 0\.5\]/);
    await refused(client.compare({ first: { image }, second: region(0, 0, Number.POSITIVE_INFINITY, 1) }, auth), 'second.face_region', /finite/);
    await refused(client.enroll({ requestId: 'r1', subjectId: 'a b', consent: {}, images: [{ image }] }, auth), 'subject_id', /must be 1-128/);
    // A request that passes the checks meets the missing detector: UNAVAILABLE, without the mesh's insides.
    const unavailable = (await client.detect({ image }, auth).catch((e: unknown) => e)) as FaceprintError;
    assert.equal(status[unavailable.code], 'UNAVAILABLE');
    assert.match(unavailable.message, /cannot be reached right now; retry later/);
    assert.doesNotMatch(unavailable.message, /127\.0\.0\.1|Resolution note|Last error/);
    client.close();

    // Alive, not ready: the services it needs do not answer.
    const statuses = await watchHealthUntil(gateway.address, (s) => s === ServingStatus.NOT_SERVING, 'faceprint.gateway.v1.FaceService', 10_000);
    assert.equal(statuses.at(-1), ServingStatus.NOT_SERVING);
    assert.deepEqual(await watchHealthUntil(gateway.address, () => true), [ServingStatus.SERVING]);
    assert.ok(gateway.logs.some((line) => line.msg === 'not ready: a service this one needs is not serving' && /detector, aligner, embedder, matcher, liveness not serving/.test(String(line.missing))));
  });

  it('on SIGTERM reports NOT_SERVING, lets the in-flight call finish and exits 0', async () => {
    // A slow detector, in process: the gateway forwards to it and the call takes 1.5 s.
    const slowDetector = await startServer({
      config: loadServerConfig('detector', { FACEPRINT_GRPC_PORT: '0' }),
      log: createLogger({ service: 'slow-detector', level: 'silent' }),
      services: [implement(DetectorService, { detect: async () => (await sleep(1_500), { faces: [{ score: 0.75 }] }) })],
    });
    slowDetector.setServing(true);
    const gateway = await spawnService('gateway', { ...keysEnv, FACEPRINT_DETECTOR_ADDRESS: slowDetector.address, FACEPRINT_DRAIN_DELAY_MS: '300' });
    processes.push(gateway);

    let sawServing = false;
    const health = watchHealthUntil(gateway.address, (s) => {
      sawServing ||= s === ServingStatus.SERVING;
      return sawServing && s === ServingStatus.NOT_SERVING;
    });
    const client = createClient(FaceService, gateway.address, { retry: false });
    const inFlight = client.detect({ image }, auth);
    await sleep(400);
    gateway.kill('SIGTERM');

    assert.deepEqual(await health, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    const response = await inFlight;
    assert.equal(response.faces[0]?.score, 0.75);
    assert.ok(response.timings.some((t) => t.service === 'gateway'), 'the gateway adds its own timing');
    assert.deepEqual(await gateway.exited, { code: 0, signal: null });
    assert.deepEqual(
      gateway.logs.map((line) => line.msg).filter((msg) => ['shutdown requested', 'draining', 'stopped'].includes(msg ?? '')),
      ['shutdown requested', 'draining', 'stopped'],
    );
    client.close();
    await slowDetector.shutdown();
  });
});
