import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { ModelManifestSchema } from '@faceprint/contracts/trainer';
import { imageInputOf } from './image-input.js';

/** A 2x2 image model with distinct per-channel mean and std. */
const manifest = (channelOrder: string) =>
  create(ModelManifestSchema, { inputs: [{ name: 'x', shape: [-1n, 3n, 2n, 2n], channelOrder, mean: [10, 20, 30], std: [2, 4, 8] }] });

describe('imageInputOf', () => {
  // Four pixels of three bytes each; pixel k is (k, 100 + k, 200 + k).
  const pixels = new Uint8Array([0, 100, 200, 1, 101, 201, 2, 102, 202, 3, 103, 203]);

  it('writes RGB crops as planes R, G, B normalised per output channel, into the slot asked for', () => {
    const input = imageInputOf(manifest('RGB'));
    assert.equal(input.cropLength, 12);
    const tensor = new Float32Array(24).fill(-1);
    input.writeCrop(pixels, tensor, 1);
    assert.deepEqual([...tensor.subarray(0, 12)], new Array(12).fill(-1), 'slot 0 untouched');
    const expected = [0, 1, 2].flatMap((c) => [0, 1, 2, 3].map((k) => Math.fround((pixels[k * 3 + c]! - [10, 20, 30][c]!) / [2, 4, 8][c]!)));
    assert.deepEqual([...tensor.subarray(12)], expected);
  });

  it('writes BGR crops with the blue byte in plane 0, each plane with its own mean and std', () => {
    const tensor = imageInputOf(manifest('BGR')).toTensor([{ pixels }]);
    const expected = [2, 1, 0].flatMap((byte, c) => [0, 1, 2, 3].map((k) => Math.fround((pixels[k * 3 + byte]! - [10, 20, 30][c]!) / [2, 4, 8][c]!)));
    assert.deepEqual([...tensor], expected);
  });
});
