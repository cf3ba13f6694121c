/**
 * The error-versus-discard curve on embeddings made for the test: identities are random unit
 * directions, each image its identity's direction plus noise, and the noise grows as an image's
 * quality falls. Discarding by quality must then raise TAR faster than discarding at random; a
 * quality that says nothing (shuffled) must not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { qualityCurve, type ImageWithQuality } from './quality-curve.js';

function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function unitVector(values: number[]): Float32Array {
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (v) => v / norm);
}

function images(): ImageWithQuality[] {
  const random = generator(7);
  const gaussian = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const dim = 32;
  const out: ImageWithQuality[] = [];
  for (let person = 0; person < 60; person++) {
    const centre = Array.from({ length: dim }, gaussian);
    for (let shot = 0; shot < 5; shot++) {
      const quality = 100 * random();
      const noise = 0.15 + (1.6 * (100 - quality)) / 100; // low quality, far from the identity
      out.push({ identity: `p${person}`, quality, embedding: unitVector(centre.map((c) => c / Math.sqrt(dim) + (noise * gaussian()) / Math.sqrt(dim))) });
    }
  }
  out.push({ identity: 'p0', quality: undefined, embedding: undefined }); // no face found: discarded first
  return out;
}

describe('qualityCurve', () => {
  it('raises TAR by discarding low quality faster than discarding at random, and keeps the counts straight', () => {
    const set = images();
    const curve = qualityCurve(set, [0, 0.1, 0.2], [1e-2]);
    assert.equal(curve[0]!.imagesKept, set.length);
    assert.equal(curve[0]!.rates[0]!.tar, curve[0]!.random[0]!.tar, 'nothing discarded: the same set');
    assert.equal(curve[2]!.imagesKept, set.length - Math.round(0.2 * set.length));
    assert.ok(curve[1]!.minQualityKept > 5, 'the image without a face and the lowest qualities went first');
    const gain = curve[2]!.rates[0]!.tar - curve[0]!.rates[0]!.tar;
    const randomGain = curve[2]!.random[0]!.tar - curve[0]!.random[0]!.tar;
    assert.ok(gain > 0.05 && gain > randomGain + 0.05, `by quality +${gain}, at random +${randomGain}`);
    assert.ok(curve[2]!.rates[0]!.fnmrAtStartThreshold < curve[0]!.rates[0]!.fnmrAtStartThreshold, 'fewer false non-matches at the start threshold');
  });

  it('gains nothing over random discards from a quality unrelated to the errors', () => {
    const random = generator(99);
    const set = images().map((image) => ({ ...image, quality: image.embedding ? 100 * random() : undefined }));
    const [start, , last] = qualityCurve(set, [0, 0.1, 0.2], [1e-2]);
    assert.ok(Math.abs(last!.rates[0]!.tar - start!.rates[0]!.tar) < 0.06, `unrelated quality moved TAR by ${last!.rates[0]!.tar - start!.rates[0]!.tar}`);
  });
});
