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
