import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeEmbedding, encodeEmbedding } from './embedding.js';

describe('embedding wire form', () => {
  it('encodes little-endian float32 and decodes it back exactly', () => {
    const vector = new Float32Array([0.5, -0.25, 1e-7, 3.4e38]);
    const bytes = encodeEmbedding(vector);
    assert.equal(bytes.byteLength, 16);
    assert.equal(new DataView(bytes.buffer).getFloat32(4, true), -0.25);
    assert.deepEqual(decodeEmbedding(bytes, 4), vector);
  });

  it('decodes from an unaligned view into a larger buffer', () => {
    const padded = new Uint8Array(1 + 8);
    padded.set(encodeEmbedding(new Float32Array([1, 2])), 1);
    assert.deepEqual([...decodeEmbedding(padded.subarray(1), 2)], [1, 2]);
  });

  it('decodes from a Node Buffer that views a larger pool', () => {
    const pool = Buffer.alloc(64);
    pool.set(encodeEmbedding(new Float32Array([3, 4])), 8);
    assert.deepEqual([...decodeEmbedding(pool.subarray(8, 16), 2)], [3, 4]);
  });

  it('refuses bytes that do not hold dim values', () => {
    assert.throws(() => decodeEmbedding(new Uint8Array(10), 4), /expected 16 bytes for dim 4, got 10/);
  });
});
