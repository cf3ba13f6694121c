import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as ort from 'onnxruntime-node';
import { ints, OnnxGraphBuilder, serializeModel } from './graph-builder.js';
import { ortSessionOptions, type OrtSettings } from './session-options.js';

/** A convolution large enough that ONNX Runtime spreads it over its intra-op threads. */
function convModel(): Uint8Array {
  const g = new OnnxGraphBuilder('conv');
  const w = g.weight('w', new Float32Array(16 * 16 * 9).fill(0.01), [16, 16, 3, 3]);
  g.output(g.node('Conv', [g.input('x', [1, 16, 128, 128]), w], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }), 'y', [1, 16, 128, 128]);
  return serializeModel(g.build({ producerName: 'faceprint-test', producerVersion: '0' }));
}

/**
 * CPU this process spends in 50 ms idle after a few runs of a session with `settings`: the least of
 * three such windows, since a spinning pool is busy in every one, while a passing burst elsewhere
 * in the process (a collection, a busy machine's late wake-up) is not.
 */
async function cpuAfterRuns(settings: OrtSettings): Promise<number> {
  const session = await ort.InferenceSession.create(convModel(), ortSessionOptions(settings));
  const x = new ort.Tensor('float32', new Float32Array(16 * 128 * 128).fill(1), [1, 16, 128, 128]);
  let least = Infinity;
  for (let window = 0; window < 3; window++) {
    for (let i = 0; i < 5; i++) await session.run({ x });
    const before = process.cpuUsage();
    await sleep(50);
    const { user, system } = process.cpuUsage(before);
    least = Math.min(least, (user + system) / 1000);
  }
  await session.release();
  return least;
}

describe('ortSessionOptions', () => {
  it('sets spinning through the session config keys', () => {
    const quiet = ortSessionOptions({ executionProviders: ['cpu'], threads: 2, spin: false });
    assert.deepEqual(quiet.extra, { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } });
    assert.equal(quiet.intraOpNumThreads, 2);
    assert.equal(ortSessionOptions({ executionProviders: ['cpu'], threads: 0, spin: true }).extra, undefined, "spinning is ONNX Runtime's default");
  });

  it('leaves the CPU alone between runs without spinning (a spinning session keeps its threads busy)', async () => {
    // Measured here: about 35 ms of CPU in those 50 ms with spinning, 0.25 ms without.
    const quiet = await cpuAfterRuns({ executionProviders: ['cpu'], threads: 2, spin: false });
    assert.ok(quiet < 10, `${quiet.toFixed(1)} ms of CPU in 50 ms idle without spinning`);
  });
});
