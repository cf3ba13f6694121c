/**
 * The whole vision pipeline through real service processes: the 8 identities of the shared test
 * crops must separate (every crop's nearest other crop is the same person: rank-1 40/40).
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitUntilServing } from '@faceprint/mesh';
import { IDENTITIES_DIR, skipUnlessPresent, spawnService, testModelRegistry, type ServiceProcess } from '@faceprint/testing';
import { cosine, FacePipeline, mirror } from './pipeline.js';

describe('FacePipeline through the vision services', { skip: skipUnlessPresent(IDENTITIES_DIR) }, () => {
  const processes: ServiceProcess[] = [];
  let pipeline: FacePipeline;
  before(async () => {
    const env = { FACEPRINT_MODEL_REGISTRY: await testModelRegistry() };
    for (const name of ['detector', 'aligner', 'embedder'] as const) processes.push(await spawnService(name, env));
    await Promise.all(processes.map((p) => waitUntilServing(p.address, Date.now() + 60_000)));
    const [detector, aligner, embedder] = processes.map((p) => p.address) as [string, string, string];
    pipeline = new FacePipeline({ detector, aligner, embedder });
  });
  after(async () => {
    pipeline?.close();
    await Promise.all(processes.map((p) => p.stop()));
  });

  it('separates the 8 identities: rank-1 40/40 leave-one-out', async () => {
    const crops: { person: string; embedding: Float32Array }[] = [];
    for (const person of (await readdir(IDENTITIES_DIR)).sort()) {
      for (const file of (await readdir(join(IDENTITIES_DIR, person))).sort()) {
        const result = await pipeline.embedImage(await readFile(join(IDENTITIES_DIR, person, file)), { choice: 'central' });
        assert.ok(result.found, `${person}/${file}: no face`);
        assert.equal(result.embedding.length, 128);
        assert.ok(Math.abs(Math.hypot(...result.embedding) - 1) < 1e-4, 'L2-normalised');
        assert.equal(result.models.embedder?.name, 'face-recognition-net');
        crops.push({ person, embedding: result.embedding });
      }
    }
    assert.equal(crops.length, 40);
    let correct = 0;
    for (const [i, probe] of crops.entries()) {
      const nearest = crops.filter((_, j) => j !== i).sort((a, b) => cosine(probe.embedding, b.embedding) - cosine(probe.embedding, a.embedding))[0]!;
      if (nearest.person === probe.person) correct += 1;
    }
    assert.equal(correct, 40);
  });
});

describe('crop helpers', () => {
  it('mirrors an RGB crop left to right', async () => {
    
    const pixels = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]); // 2x2
    assert.deepEqual([...mirror(pixels, 2, 2)], [4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9]);
  });
});
