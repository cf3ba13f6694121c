/**
 * Multi-sample enrolment on embeddings made for the test (identities are random directions, each
 * image its identity's direction plus noise): the counts follow the protocol, and the fusions
 * behave as they must: the best of five templates accepts more impostors at a single-comparison
 * threshold than one template does, the mean template fewer, and more templates raise TAR.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ratesAt } from './all-pairs.js';
import { multiSampleScores, usableIdentities } from './multi-sample.js';

function images(): Map<string, (Float32Array | undefined)[]> {
  let state = 11;
  const random = () => ((state = (state * 1664525 + 1013904223) >>> 0), state / 2 ** 32);
  const gaussian = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const unit = (v: number[]) => Float32Array.from(v, (x) => x / Math.hypot(...v));
  const dim = 24;
  const out = new Map<string, (Float32Array | undefined)[]>();
  for (let person = 0; person < 80; person++) {
    const centre = Array.from({ length: dim }, gaussian);
    out.set(`p${person}`, Array.from({ length: 8 }, () => unit(centre.map((c) => c + 1.1 * gaussian()))));
  }
  out.set('few', [unit(Array.from({ length: dim }, gaussian))]); // too few images: left out
  out.get('p0')![6] = undefined; // a probe without a face: a non-match in every comparison
  return out;
}

describe('multiSampleScores', () => {
  const set = images();
  it('enrols the first N, probes with the images from the largest N on, and counts every comparison', () => {
    assert.equal(usableIdentities(set, 5).length, 80);
    const scores = multiSampleScores(set, 3, 5, 'max');
    assert.equal(scores.genuinePairs, 80 * 3);
    assert.equal(scores.impostorPairs, 80 * 3 * 79);
    assert.equal(scores.genuine.length, 80 * 3 - 1, 'the probe without a face has no score');
    assert.equal(scores.impostor.length, (80 * 3 - 1) * 79);
  });

  it('the best of several templates lets more impostors through a single-comparison threshold; the mean template does not', () => {
    const single = multiSampleScores(set, 1, 5, 'max');
    const threshold = single.impostor[Math.floor(single.impostor.length * 0.001)]!; // about FAR 1e-3 for one template
    const far = (enrolled: number, fusion: 'max' | 'mean-template') => ratesAt(multiSampleScores(set, enrolled, 5, fusion), threshold);
    assert.ok(far(5, 'max').far > 2 * far(1, 'max').far, `max of 5: ${far(5, 'max').far} vs one template ${far(1, 'max').far}`);
    assert.ok(far(5, 'mean-template').far < far(5, 'max').far, 'the mean template is one comparison');
    assert.ok(far(5, 'mean-template').frr < far(1, 'max').frr, 'five templates accept more genuine probes');
  });
});
