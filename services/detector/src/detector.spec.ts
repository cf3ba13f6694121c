import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DetectorService } from '@faceprint/contracts/detector';
import { Health } from '@faceprint/contracts/health';
import { createClient, type FaceprintError, loadServerConfig, startServer, type FaceprintServer, type ServiceClient } from '@faceprint/service-kit';
import { createLogger } from '@faceprint/telemetry';
import { IDENTITIES_DIR, MODEL_MIRROR, SHARED_DIR, skipUnlessPresent, spawnService, testModelRegistry, waitForServiceProcess } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import sharp from 'sharp';
import { loadDetectorConfig } from './detector-config.js';
import { detectorService } from './detector-service.js';

const GROUPS = join(SHARED_DIR, 'models/test-images/groups');

describe('DetectorService on real photos', { skip: skipUnlessPresent(GROUPS) }, () => {
  let server: FaceprintServer;
  let detector: ServiceClient<typeof DetectorService>;
  let close: (() => Promise<void>) | undefined;
  before(async () => {
    const setup = detectorService(loadDetectorConfig({ FACEPRINT_MODEL_REGISTRY: await testModelRegistry() }));
    server = await startServer({ config: loadServerConfig('detector', { FACEPRINT_GRPC_PORT: '0' }), log: createLogger({ service: 'detector', level: 'silent' }), services: setup.services });
    detector = createClient(DetectorService, server.address, { retry: false });
    await assert.rejects(detector.detect({ image: { content: new Uint8Array([1]) } }), (e: FaceprintError) => e.code === status.UNAVAILABLE, 'unavailable before the model is loaded');
    await setup.ready!();
    close = setup.close;
  });
  after(async () => {
    detector.close();
    await server.shutdown();
    await close?.();
  });
  const detect = async (path: string, options = {}) => detector.detect({ image: { content: await readFile(path) }, options });

  it('finds every face in the group photos, with the landmarks on the eyes', async () => {
    for (const [file, count] of [['bbt1.jpg', 4], ['bbt4.jpg', 6], ['sample1.jpg', 3]] as const) {
      const response = await detect(join(GROUPS, file));
      assert.equal(response.faces.length, count, file);
      assert.equal(response.model?.name, 'yunet-n');
      assert.ok(response.image!.width > 0);
      for (const face of response.faces) {
        const { box, landmarks } = face;
        const { leftEye, rightEye, mouthLeft } = landmarks!;
        assert.ok(leftEye!.x < rightEye!.x, 'the left eye is on the image left');
        for (const eye of [leftEye!, rightEye!]) {
          assert.ok(eye.x > box!.x && eye.x < box!.x + box!.width && eye.y > box!.y && eye.y < box!.y + box!.height * 0.6, `${file}: eye inside the upper box`);
        }
        assert.ok(mouthLeft!.y > leftEye!.y, 'the mouth is below the eyes');
        assert.ok(face.score >= 0.6 && face.score <= 1);
        assert.ok(face.quality!.faceSize > 20 && face.quality!.sharpness > 0);
        assert.ok(Math.abs(face.quality!.rollDegrees) < 30, 'upright faces have little roll');
      }
    }
  });

  it('finds the one face in every tight 150 px crop of the 8 identities', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    let found = 0;
    for (const person of await readdir(IDENTITIES_DIR)) {
      for (const file of await readdir(join(IDENTITIES_DIR, person))) {
        const { faces } = await detect(join(IDENTITIES_DIR, person, file));
        if (faces.length >= 1 && faces[0]!.box!.width > 50) found += 1;
      }
    }
    assert.equal(found, 40);
  });

  it('applies the options: max faces, minimum size, score threshold', async () => {
    assert.equal((await detect(join(GROUPS, 'bbt4.jpg'), { maxFaces: 2 })).faces.length, 2);
    assert.equal((await detect(join(GROUPS, 'bbt4.jpg'), { minFaceSize: 400 })).faces.length, 0);
    const strict = await detect(join(GROUPS, 'bbt4.jpg'), { scoreThreshold: 0.99 });
    assert.ok(strict.faces.every((f) => f.score >= 0.99));
  });

  it('reports the roll of a tilted face and follows EXIF orientation', async () => {
    const tilted = await sharp(join(GROUPS, 'bbt4.jpg')).rotate(20, { background: '#000' }).jpeg().toBuffer();
    const { faces } = await detector.detect({ image: { content: tilted } });
    assert.ok(faces.length >= 5);
    const rolls = faces.map((f) => f.quality!.rollDegrees).sort((a, b) => a - b);
    const median = rolls[Math.floor(rolls.length / 2)]!;
    assert.ok(Math.abs(median - 20) < 8, `median roll ${median}`);

    const sideways = await sharp(join(GROUPS, 'bbt4.jpg')).rotate(-90).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const upright = await detector.detect({ image: { content: sideways } });
    assert.equal(upright.faces.length, 6, 'EXIF orientation 6 turns the stored image upright before detection');
    assert.ok(upright.image!.width > upright.image!.height);
  });

  it('measures face quality: each degraded copy of a face moves its own measure and lowers the unified score', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const source = join(IDENTITIES_DIR, 'penny/penny1.png');
    const base = await sharp(source).png().toBuffer();
    const qualityOf = async (image: Buffer, name: string) => {
      const { faces } = await detector.detect({ image: { content: image } });
      assert.equal(faces.length, 1, `${name}: one face`);
      return faces[0]!.quality!;
    };
    const original = await qualityOf(base, 'original');
    assert.ok(original.interEyeDistance > 30 && original.interEyeDistance < 100, `inter-eye distance ${original.interEyeDistance}`);
    assert.ok(original.unifiedScore > 50, `a sharp, evenly lit frontal face scores high: ${original.unifiedScore}`);
    const { width = 150, height = 150 } = await sharp(base).metadata();
    const darkLeft = Buffer.from(`<svg width="${width}" height="${height}"><rect x="0" y="0" width="${width / 2}" height="${height}" fill="black" fill-opacity="0.8"/></svg>`);
    const variants = {
      dark: await sharp(base).linear(0.12, 0).png().toBuffer(),
      bright: await sharp(base).linear(1.7, 50).png().toBuffer(),
      'lit from one side': await sharp(base).composite([{ input: darkLeft }]).png().toBuffer(),
      blurred: await sharp(base).blur(5).png().toBuffer(),
    };
    const q = Object.fromEntries(await Promise.all(Object.entries(variants).map(async ([name, image]) => [name, await qualityOf(image, name)] as const)));
    assert.ok(q.dark!.underExposure > original.underExposure + 0.3 && q.dark!.luminanceMean < original.luminanceMean / 3, `dark: ${q.dark!.underExposure}`);
    assert.ok(q.bright!.overExposure > original.overExposure + 0.3, `bright: ${q.bright!.overExposure}`);
    assert.ok(q['lit from one side']!.illuminationUniformity < original.illuminationUniformity - 0.3, `one side: ${q['lit from one side']!.illuminationUniformity} vs ${original.illuminationUniformity}`);
    assert.ok(q.blurred!.sharpness < original.sharpness / 3, `blurred: ${q.blurred!.sharpness} vs ${original.sharpness}`);
    for (const [name, quality] of Object.entries(q)) assert.ok(quality.unifiedScore < original.unifiedScore - 20, `${name}: unified ${quality.unifiedScore} vs ${original.unifiedScore}`);
  });

  it('answers a health check while an image is in the network (inference runs on its own thread)', async () => {
    // A 2048 px input makes one inference take hundreds of ms, so that the check surely arrives during it.
    const setup = detectorService(loadDetectorConfig({ FACEPRINT_MODEL_REGISTRY: await testModelRegistry(), FACEPRINT_DETECTOR_INPUT_SIZE: '2048' }));
    const slow = await startServer({ config: loadServerConfig('detector', { FACEPRINT_GRPC_PORT: '0' }), log: createLogger({ service: 'detector', level: 'silent' }), services: setup.services });
    await setup.ready!();
    const client = createClient(DetectorService, slow.address, { retry: false });
    const health = createClient(Health, slow.address, { retry: false });
    try {
      const order: string[] = [];
      const detection = client.detect({ image: { content: await readFile(join(GROUPS, 'bbt1.jpg')) } }).then(() => order.push('detect'));
      await sleep(100); // decoded and letterboxed by now; the inference takes far longer
      await health.check({}).then(() => order.push('health'));
      await detection;
      assert.deepEqual(order, ['health', 'detect']);
    } finally {
      client.close();
      health.close();
      await slow.shutdown();
      await setup.close?.();
    }
  });

  it('refuses bad images with INVALID_ARGUMENT on image.content', async () => {
    for (const content of [new TextEncoder().encode('GIF89a but not really'), (await readFile(join(GROUPS, 'bbt1.jpg'))).subarray(0, 2000)]) {
      await assert.rejects(detector.detect({ image: { content } }), (error: FaceprintError) => {
        assert.equal(error.code, status.INVALID_ARGUMENT);
        assert.deepEqual(error.fieldViolations.map((v) => v.field), ['image.content']);
        return true;
      });
    }
  });
});

describe('DetectorService under a burst of large photos', { skip: skipUnlessPresent(MODEL_MIRROR) }, () => {
  it('works on no more images than its memory budget holds and refuses calls beyond its waiting line', async () => {
    // 38.5 megapixels (115 MB decoded) from a 0.2 MB JPEG: a burst of these once took the detector from 250 MB to 2.1 GB.
    const photo = await sharp({ create: { width: 7000, height: 5500, channels: 3, background: '#808080' } }).jpeg().toBuffer();
    const service = await spawnService('detector', {
      FACEPRINT_MODEL_REGISTRY: await testModelRegistry(),
      FACEPRINT_IMAGE_MEMORY_MB: '150', // one such photo at a time
      FACEPRINT_IMAGE_MAX_WAITING: '4',
    });
    const detector = createClient(DetectorService, service.address, { retry: false });
    const peakResidentMb = async () => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${service.pid}/status`, 'utf8'))![1]) / 1024;
    try {
      await waitForServiceProcess(service, Date.now() + 60_000);
      await detector.detect({ image: { content: photo } }); // the process's peak now includes one decoded photo
      const before = await peakResidentMb();
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => detector.detect({ image: { content: photo } })));
      const refused = results.filter((r) => r.status === 'rejected').map((r) => r.reason as FaceprintError);
      assert.ok(refused.every((e) => e.code === status.RESOURCE_EXHAUSTED), refused.map((e) => e.message).join('; '));
      assert.ok(refused.length >= 1 && results.length - refused.length >= 5, `${refused.length} of 8 refused: one decoding and four waiting are served`);
      // Eight at once would add about 800 MB; within the budget the peak grows by at most about one
      // more photo (a released image is freed by the next garbage collection, not at once).
      const growth = (await peakResidentMb()) - before;
      assert.ok(growth < 300, `the peak grew by ${growth.toFixed(0)} MB`);
    } finally {
      detector.close();
      await service.stop();
    }
  });
});
