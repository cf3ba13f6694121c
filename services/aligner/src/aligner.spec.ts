import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AlignerService } from '@faceprint/contracts/aligner';
import { createClient, type FaceprintError, loadServerConfig, startServer, type FaceprintServer, type ServiceClient } from '@faceprint/service-kit';
import { createLogger } from '@faceprint/telemetry';
import { IDENTITIES_DIR, skipUnlessPresent, testModelRegistry } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { loadAlignerConfig } from './aligner-config.js';
import { alignerService } from './aligner-service.js';
import { apply, fitError, fitSimilarity, warp, type Point } from './similarity.js';

describe('similarity fit and warp', () => {
  it('recovers a known rotation, scale and shift exactly', () => {
    const truth = { a: 1.2 * Math.cos(0.3), b: 1.2 * Math.sin(0.3), tx: 14, ty: -6 };
    const from: Point[] = [[10, 20], [60, 22], [35, 50], [15, 75], [58, 77]];
    const to = from.map((p) => apply(truth, p));
    const fitted = fitSimilarity(from, to);
    for (const key of ['a', 'b', 'tx', 'ty'] as const) assert.ok(Math.abs(fitted[key] - truth[key]) < 1e-9, key);
    assert.ok(fitError(fitted, from, to) < 1e-9);
  });

  it('never reflects: a mirrored target cannot be fitted', () => {
    const from: Point[] = [[0, 0], [10, 0], [5, 8], [1, 14], [9, 14]];
    const mirrored = from.map(([x, y]) => [-x, y] as const);
    assert.ok(fitError(fitSimilarity(from, mirrored), from, mirrored) > 2);
  });

  it('copies pixels under the identity transform and fills the outside with black', () => {
    const image = { data: new Uint8Array([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]), width: 2, height: 2, format: 'png' };
    assert.deepEqual([...warp(image, { a: 1, b: 0, tx: 0, ty: 0 }, 2, 2)], [...image.data]);
    assert.deepEqual([...warp(image, { a: 1, b: 0, tx: 5, ty: 5 }, 1, 1)], [0, 0, 0]);
  });
});

describe('AlignerService', { skip: skipUnlessPresent(IDENTITIES_DIR) }, () => {
  let server: FaceprintServer;
  let aligner: ServiceClient<typeof AlignerService>;
  let close: (() => Promise<void>) | undefined;
  // Landmarks of amy1.png as the detector reports them (rounded).
  const five = { leftEye: { x: 48, y: 42 }, rightEye: { x: 107, y: 46 }, noseTip: { x: 60, y: 78 }, mouthLeft: { x: 48, y: 106 }, mouthRight: { x: 103, y: 108 } };
  let image: Uint8Array;
  before(async () => {
    const setup = alignerService(loadAlignerConfig({ FACEPRINT_MODEL_REGISTRY: await testModelRegistry() }));
    await setup.ready!();
    close = setup.close;
    server = await startServer({ config: loadServerConfig('aligner', { FACEPRINT_GRPC_PORT: '0' }), log: createLogger({ service: 'aligner', level: 'silent' }), services: setup.services });
    aligner = createClient(AlignerService, server.address, { retry: false });
    image = await readFile(join(IDENTITIES_DIR, 'amy/amy1.png'));
  });
  after(async () => {
    aligner.close();
    await server.shutdown();
    await close?.();
  });

  it("warps to the embedder's template read from its manifest", async () => {
    const response = await aligner.align({ image: { content: image }, faces: [{ five }], target: { case: 'model', value: { name: 'face-recognition-net' } } });
    assert.deepEqual([response.template?.width, response.template?.height], [150, 150]);
    const [face] = response.faces;
    assert.equal(face!.face!.pixels.length, 150 * 150 * 3);
    assert.ok(face!.fitError < 6, `fit error ${face!.fitError} px`);
    const { m00, m01, m10, m11 } = face!.transform!;
    assert.ok(Math.abs(m00 - m11) < 1e-9 && Math.abs(m01 + m10) < 1e-9, 'a similarity: [[a, -b], [b, a]]');
  });

  it('refines landmarks with the 68-point net and reports all 68', async () => {
    const response = await aligner.align({ image: { content: image }, faces: [{ five }], target: { case: 'model', value: { name: 'face-recognition-net' } }, refineLandmarks: true });
    const landmarks = response.faces[0]!.landmarks!;
    assert.equal(landmarks.sixtyEight.length, 68);
    const refinedLeftEye = landmarks.five!.leftEye!;
    assert.ok(Math.hypot(refinedLeftEye.x - five.leftEye.x, refinedLeftEye.y - five.leftEye.y) < 8, 'the refined eye stays near the detected one');
  });

  it('answers bad requests with clear statuses', async () => {
    const check = async (request: Parameters<typeof aligner.align>[0], code: status, pattern: RegExp) =>
      assert.rejects(aligner.align(request), (error: FaceprintError) => error.code === code && pattern.test(error.message));
    await check({ image: { content: image }, faces: [{ five: { ...five, noseTip: undefined } }], target: { case: 'model', value: { name: 'face-recognition-net' } } }, status.INVALID_ARGUMENT, /faces\[0\]\.five\.nose_tip: required/);
    await check({ image: { content: image }, faces: [{ five }], target: { case: 'template', value: { points: [{ x: 1, y: 1 }], width: 112, height: 112 } } }, status.INVALID_ARGUMENT, /template\.points: exactly five points/);
    await check({ image: { content: image }, faces: [{ five }], target: { case: 'model', value: { name: 'no-such-model' } } }, status.NOT_FOUND, /no-such-model/);
    await check({ image: { content: image }, faces: [{ five }] }, status.INVALID_ARGUMENT, /target: a template or a model is required/);
    // Crops that could not be sent back are refused before any is warped: 11 crops of 1024x1024 are over 32 MiB.
    const large = { points: [{ x: 380, y: 450 }, { x: 640, y: 450 }, { x: 512, y: 600 }, { x: 400, y: 750 }, { x: 620, y: 750 }], width: 1024, height: 1024 };
    await check({ image: { content: image }, faces: Array.from({ length: 11 }, () => ({ five })), target: { case: 'template', value: large } }, status.INVALID_ARGUMENT, /faces: 11 crops of 1024x1024 make a 33\.0 MB response, over the 32\.0 MB message limit: send at most 10 faces per call/);
  });
});
