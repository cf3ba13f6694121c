/**
 * The matcher on real faces: the shared 8 people x 5 crops through the real detector, aligner and
 * embedder, enrolled with one crop each in the embedded gallery, then identified and verified with
 * the others at the thresholds shipped with FaceRecognitionNet.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ModelRef } from '@faceprint/contracts/common';
import { FacePipeline } from '@faceprint/face-pipeline';
import { waitUntilServing } from '@faceprint/mesh';
import { IDENTITIES_DIR, skipUnlessPresent, spawnService, testModelRegistry, type ServiceProcess } from '@faceprint/testing';
import { consent, embedding, startInProcessMatcher, type InProcessMatcher } from './test-support.js';

describe('matcher on real faces', { skip: skipUnlessPresent(IDENTITIES_DIR) }, () => {
  const processes: ServiceProcess[] = [];
  const faces: { person: string; index: number; vector: Float32Array; model: ModelRef }[] = [];
  let dataDir: string;
  let m: InProcessMatcher;
  const ctx = { tenantId: 'real', callerId: 'test', roles: ['operator'] };

  before(async () => {
    const registry = await testModelRegistry();
    for (const name of ['detector', 'aligner', 'embedder'] as const) processes.push(await spawnService(name, { FACEPRINT_MODEL_REGISTRY: registry }));
    await Promise.all(processes.map((p) => waitUntilServing(p.address, Date.now() + 60_000)));
    const [detector, aligner, embedder] = processes.map((p) => p.address) as [string, string, string];
    const pipeline = new FacePipeline({ detector, aligner, embedder });
    try {
      for (const person of (await readdir(IDENTITIES_DIR)).sort()) {
        for (const [index, file] of (await readdir(join(IDENTITIES_DIR, person))).sort().entries()) {
          const result = await pipeline.embedImage(await readFile(join(IDENTITIES_DIR, person, file)), { choice: 'central' });
          assert.ok(result.found, `${person}/${file}: no face`);
          faces.push({ person, index, vector: result.embedding, model: result.models.embedder! });
        }
      }
    } finally {
      pipeline.close();
    }
    dataDir = await mkdtemp(join(tmpdir(), 'faceprint-real-faces-'));
    m = await startInProcessMatcher({ FACEPRINT_MATCHER_DATA_DIR: dataDir, FACEPRINT_MODEL_REGISTRY: registry });
  });
  after(async () => {
    await m?.close();
    await Promise.all(processes.map((p) => p.stop()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('identifies every other crop of the 8 people as the right person (rank-1 32/32)', async () => {
    for (const face of faces.filter((f) => f.index === 0)) {
      await m.matcher.enrollTemplates({ context: ctx, requestId: face.person, subjectId: face.person, consent: consent(), templates: [{ embedding: embedding(face.vector, face.model) }] });
    }
    let correct = 0;
    for (const probe of faces.filter((f) => f.index > 0)) {
      const result = await m.matcher.identify({ context: ctx, probe: embedding(probe.vector, probe.model), topK: 3, targetFar: 1e-3 });
      assert.equal(result.searchedTemplates, 8n);
      assert.equal(result.candidates[0]?.decision?.model?.name, 'face-recognition-net');
      assert.ok(Math.abs(result.candidates[0].decision.threshold - 0.9332) < 1e-3, 'the threshold shipped for FAR 1e-3');
      if (result.candidates[0]?.subjectId === probe.person) correct += 1;
    }
    assert.equal(correct, 32);
  });

  it('verifies 1:1: scores of the same person above those of others', async () => {
    const [alice, bob] = [...new Set(faces.map((f) => f.person))];
    const probe = faces.find((f) => f.person === alice && f.index === 1)!;
    const same = await m.matcher.verify({ context: ctx, subjectId: alice!, probe: embedding(probe.vector, probe.model) });
    const other = await m.matcher.verify({ context: ctx, subjectId: bob!, probe: embedding(probe.vector, probe.model) });
    assert.ok(same.decision!.score > other.decision!.score + 0.05, `${same.decision!.score} vs ${other.decision!.score}`);
    assert.equal(other.decision?.isMatch, false);
    assert.equal(same.decision?.targetFar, 1e-4, 'the default target rate');
  });
});
