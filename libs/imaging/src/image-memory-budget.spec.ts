import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { compileEnv, FaceprintError } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import sharp from 'sharp';
import { IMAGE_MEMORY_ENV, ImageMemoryBudget, imageMemorySettingsOf } from './image-memory-budget.js';

/** A grey PNG of `width` x `height` (3 bytes a pixel decoded). */
const png = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#808080' } }).png().toBuffer();

/** Whether `promise` has resolved once pending callbacks have run (admission on release is immediate). */
async function hasResolved(promise: Promise<unknown>): Promise<boolean> {
  let resolved = false;
  void promise.then(
    () => (resolved = true),
    () => undefined,
  );
  for (let i = 0; i < 5; i++) await turn();
  return resolved;
}

/** Waits until `budget` has `count` calls waiting (a call joins the line once its header is read, off the event loop). */
async function untilWaiting(budget: ImageMemoryBudget, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (budget.waiting !== count) {
    assert.ok(Date.now() < deadline, `${budget.waiting} calls waiting, expected ${count}`);
    await turn();
  }
}

describe('ImageMemoryBudget', () => {
  it('admits images while they fit, lets the waiting in in order of arrival, and decodes', async () => {
    const budget = new ImageMemoryBudget({ bytes: 75_000, maxWaiting: 10 });
    const image = await png(100, 100); // 30,000 bytes decoded
    const first = await budget.admit(image, undefined);
    const second = await budget.admit(image, undefined);
    assert.equal(budget.bytesInUse, 60_000);
    const third = budget.admit(await png(100, 50), undefined); // 15,000: fits
    await third;
    const fourth = budget.admit(await png(200, 100), undefined); // 60,000: waits for room
    await untilWaiting(budget, 1);
    const fifth = budget.admit(await png(50, 50), undefined); // 7,500: would fit, but waits behind the fourth
    await untilWaiting(budget, 2);
    assert.equal(await hasResolved(fourth), false);
    assert.equal(await hasResolved(fifth), false);
    first.release();
    first.release(); // idempotent
    assert.equal(await hasResolved(fourth), false, '60,000 needs the second image released too');
    second.release();
    assert.equal(await hasResolved(fourth), true);
    assert.equal(await hasResolved(fifth), false, '15,000 + 60,000 + 7,500 > 75,000');
    (await third).release();
    assert.equal(await hasResolved(fifth), true);
    const decoded = await (await fourth).decode();
    assert.deepEqual([decoded.width, decoded.height, decoded.data.length], [200, 100, 200 * 100 * 3]);
    (await fourth).release();
    (await fifth).release();
    assert.equal(budget.bytesInUse, 0);
  });

  it("counts the service's working memory, and runs a call larger than the whole budget alone", async () => {
    const budget = new ImageMemoryBudget({ bytes: 100_000, maxWaiting: 10 });
    const small = await budget.admit(await png(10, 10), undefined, { workingBytes: 50_000 });
    assert.equal(budget.bytesInUse, 50_300);
    const huge = budget.admit(await png(10, 10), undefined, { workingBytes: 1_000_000 });
    await untilWaiting(budget, 1);
    small.release();
    assert.equal(await hasResolved(huge), true);
    assert.equal(budget.bytesInUse, 100_000, 'held as the whole budget');
    (await huge).release();
  });

  it('refuses a call with RESOURCE_EXHAUSTED when the waiting line is full', async () => {
    const budget = new ImageMemoryBudget({ bytes: 30_000, maxWaiting: 1 });
    const image = await png(100, 100);
    const held = await budget.admit(image, undefined);
    const waiting = budget.admit(image, undefined);
    await untilWaiting(budget, 1);
    await assert.rejects(budget.admit(image, undefined), (error: FaceprintError) => error.code === status.RESOURCE_EXHAUSTED && /waiting for memory \(1 calls, 0\.0 MB\)/.test(error.message));
    held.release();
    (await waiting).release();
  });

  it('refuses a call when the encoded images waiting would add up to the budget', async () => {
    // Noise does not compress: about 30 KB encoded, 30,000 bytes decoded.
    const noise = await sharp(randomBytes(100 * 100 * 3), { raw: { width: 100, height: 100, channels: 3 } }).png().toBuffer();
    assert.ok(noise.length > 22_500 && noise.length < 45_000, `${noise.length} bytes encoded`);
    const budget = new ImageMemoryBudget({ bytes: 45_000, maxWaiting: 100 });
    const held = await budget.admit(noise, undefined);
    const waiting = budget.admit(noise, undefined); // 30,000 more do not fit: waits, holding one encoded image
    await untilWaiting(budget, 1);
    await assert.rejects(budget.admit(noise, undefined), (error: FaceprintError) => error.code === status.RESOURCE_EXHAUSTED && /waiting for memory \(1 calls, 0\.0 MB\)/.test(error.message), 'two encoded images would hold more than 45,000 bytes');
    held.release();
    (await waiting).release();
    assert.equal(budget.bytesInUse, 0);
  });

  it('drops a waiting call when it is cancelled, and lets the next one in', async () => {
    const budget = new ImageMemoryBudget({ bytes: 30_000, maxWaiting: 10 });
    const held = await budget.admit(await png(100, 100), undefined);
    const controller = new AbortController();
    const cancelled = budget.admit(await png(100, 80), controller.signal); // 24,000: waits
    await untilWaiting(budget, 1);
    const small = budget.admit(await png(10, 10), undefined); // waits behind it
    await untilWaiting(budget, 2);
    controller.abort(new FaceprintError(status.CANCELLED, 'call cancelled by the client'));
    await assert.rejects(cancelled, (error: FaceprintError) => error.code === status.CANCELLED);
    assert.equal(budget.waiting, 1);
    held.release();
    assert.equal(await hasResolved(small), true);
    (await small).release();
    assert.equal(budget.bytesInUse, 0);
    await assert.rejects(budget.admit(await png(10, 10), controller.signal), (error: FaceprintError) => error.code === status.CANCELLED, 'an aborted call is not admitted');
  });

  it('refuses bad images on the request field before reserving anything', async () => {
    const budget = new ImageMemoryBudget({ bytes: 30_000, maxWaiting: 0 });
    for (const [bytes, reason] of [
      [new Uint8Array(), /the image is empty/],
      [new TextEncoder().encode('not an image'), /corrupt, truncated or not a jpeg/],
    ] as const) {
      await assert.rejects(budget.admit(bytes, undefined, { field: 'images[1].image.content' }), (error: FaceprintError) => {
        assert.equal(error.code, status.INVALID_ARGUMENT);
        assert.equal(error.fieldViolations[0]?.field, 'images[1].image.content');
        assert.match(error.fieldViolations[0]?.description ?? '', reason);
        return true;
      });
    }
    assert.equal(budget.bytesInUse, 0);
  });

  it('is set by FACEPRINT_IMAGE_MEMORY_MB and FACEPRINT_IMAGE_MAX_WAITING', () => {
    assert.deepEqual(imageMemorySettingsOf(compileEnv({}, IMAGE_MEMORY_ENV)), { bytes: 256 * 1024 * 1024, maxWaiting: 256 });
    assert.deepEqual(imageMemorySettingsOf(compileEnv({ FACEPRINT_IMAGE_MEMORY_MB: '100', FACEPRINT_IMAGE_MAX_WAITING: '0' }, IMAGE_MEMORY_ENV)), { bytes: 100 * 1024 * 1024, maxWaiting: 0 });
    assert.throws(() => compileEnv({ FACEPRINT_IMAGE_MEMORY_MB: '8' }, IMAGE_MEMORY_ENV), /FACEPRINT_IMAGE_MEMORY_MB/);
  });
});
