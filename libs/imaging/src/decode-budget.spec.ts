import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { IMAGE_MAX_PIXELS } from '@faceprint/contracts';
import { compileEnv, FaceprintError } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import sharp from 'sharp';
import { DECODE_BUDGET_ENV, DecodeBudget, decodeBudgetSettingsOf } from './decode-budget.js';

/** A grey PNG of `width` x `height`. */
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
async function untilWaiting(budget: DecodeBudget, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (budget.waiting !== count) {
    assert.ok(Date.now() < deadline, `${budget.waiting} calls waiting, expected ${count}`);
    await turn();
  }
}

describe('DecodeBudget', () => {
  it('admits images while their pixels fit, lets the waiting in in order of arrival, and decodes', async () => {
    const budget = new DecodeBudget({ pixels: 25_000, maxWaiting: 10 });
    const image = await png(100, 100); // 10,000 pixels
    const first = await budget.admit(image, undefined);
    const second = await budget.admit(image, undefined);
    assert.equal(budget.pixelsInUse, 20_000);
    const third = budget.admit(await png(100, 50), undefined); // 5,000: fits
    await third;
    const fourth = budget.admit(await png(200, 100), undefined); // 20,000: waits for room
    await untilWaiting(budget, 1);
    const fifth = budget.admit(await png(50, 50), undefined); // 2,500: would fit, but waits behind the fourth
    await untilWaiting(budget, 2);
    assert.equal(await hasResolved(fourth), false);
    assert.equal(await hasResolved(fifth), false);
    first.release();
    first.release(); // idempotent
    assert.equal(await hasResolved(fourth), false, '20,000 needs the second image released too');
    second.release();
    assert.equal(await hasResolved(fourth), true);
    assert.equal(await hasResolved(fifth), false, '5,000 + 20,000 + 2,500 > 25,000');
    (await third).release();
    assert.equal(await hasResolved(fifth), true);
    const decoded = await (await fourth).decode();
    assert.deepEqual([decoded.width, decoded.height, decoded.data.length], [200, 100, 200 * 100 * 3]);
    (await fourth).release();
    (await fifth).release();
    assert.equal(budget.pixelsInUse, 0);
  });

  it('refuses a call with RESOURCE_EXHAUSTED when the waiting line is full', async () => {
    const budget = new DecodeBudget({ pixels: 10_000, maxWaiting: 1 });
    const image = await png(100, 100);
    const held = await budget.admit(image, undefined);
    const waiting = budget.admit(image, undefined);
    await untilWaiting(budget, 1);
    await assert.rejects(budget.admit(image, undefined), (error: FaceprintError) => error.code === status.RESOURCE_EXHAUSTED && /1 calls waiting/.test(error.message));
    held.release();
    (await waiting).release();
  });

  it('drops a waiting call when it is cancelled, and lets the next one in', async () => {
    const budget = new DecodeBudget({ pixels: 10_000, maxWaiting: 10 });
    const held = await budget.admit(await png(100, 100), undefined);
    const controller = new AbortController();
    const cancelled = budget.admit(await png(100, 80), controller.signal); // 8,000: waits
    await untilWaiting(budget, 1);
    const small = budget.admit(await png(10, 10), undefined); // waits behind it
    await untilWaiting(budget, 2);
    controller.abort(new FaceprintError(status.CANCELLED, 'call cancelled by the client'));
    await assert.rejects(cancelled, (error: FaceprintError) => error.code === status.CANCELLED);
    assert.equal(budget.waiting, 1);
    held.release();
    assert.equal(await hasResolved(small), true);
    (await small).release();
    assert.equal(budget.pixelsInUse, 0);
    await assert.rejects(budget.admit(await png(10, 10), controller.signal), (error: FaceprintError) => error.code === status.CANCELLED, 'an aborted call is not admitted');
  });

  it('refuses bad images on the request field before reserving anything', async () => {
    const budget = new DecodeBudget({ pixels: 10_000, maxWaiting: 0 });
    for (const [bytes, reason] of [
      [new Uint8Array(), /the image is empty/],
      [new TextEncoder().encode('not an image'), /corrupt, truncated or not a jpeg/],
    ] as const) {
      await assert.rejects(budget.admit(bytes, undefined, 'images[1].image.content'), (error: FaceprintError) => {
        assert.equal(error.code, status.INVALID_ARGUMENT);
        assert.equal(error.fieldViolations[0]?.field, 'images[1].image.content');
        assert.match(error.fieldViolations[0]?.description ?? '', reason);
        return true;
      });
    }
    assert.equal(budget.pixelsInUse, 0);
  });

  it('is set by FACEPRINT_DECODE_BUDGET_PIXELS (at least one image of the largest size) and FACEPRINT_DECODE_MAX_WAITING', () => {
    assert.deepEqual(decodeBudgetSettingsOf(compileEnv({}, DECODE_BUDGET_ENV)), { pixels: 2 * IMAGE_MAX_PIXELS, maxWaiting: 256 });
    assert.deepEqual(decodeBudgetSettingsOf(compileEnv({ FACEPRINT_DECODE_BUDGET_PIXELS: '120000000', FACEPRINT_DECODE_MAX_WAITING: '0' }, DECODE_BUDGET_ENV)), {
      pixels: 120_000_000,
      maxWaiting: 0,
    });
    assert.throws(() => compileEnv({ FACEPRINT_DECODE_BUDGET_PIXELS: String(IMAGE_MAX_PIXELS - 1) }, DECODE_BUDGET_ENV), /FACEPRINT_DECODE_BUDGET_PIXELS/);
  });
});
