import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { allInOrder } from './settle.js';

describe('allInOrder', () => {
  it('resolves with every value, in order', async () => {
    assert.deepEqual(await allInOrder([sleep(20).then(() => 'a'), Promise.resolve('b')]), ['a', 'b']);
  });

  it('waits for all, then rejects with the first failure in order, not in time', async () => {
    let slowDone = false;
    const slowFailure = sleep(30).then(() => {
      slowDone = true;
      throw new Error('first');
    });
    await assert.rejects(allInOrder([slowFailure, Promise.reject(new Error('second'))]), /first/);
    assert.ok(slowDone);
  });
});
