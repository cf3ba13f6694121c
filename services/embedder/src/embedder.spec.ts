import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeEmbedding } from '@faceprint/contracts';
import { create } from '@bufbuild/protobuf';
import { AlignedFaceSchema, PixelFormat } from '@faceprint/contracts/common';
import { EmbedderService, ModelState } from '@faceprint/contracts/embedder';
import { ModelRegistry } from '@faceprint/model-registry';
import { createClient, type FaceprintError, loadServerConfig, startServer, type FaceprintServer, type ServiceClient } from '@faceprint/service-kit';
import { createLogger } from '@faceprint/telemetry';
import { skipUnlessPresent, MODEL_MIRROR, testModelRegistry, rejectsWith } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { Batcher } from './batcher.js';
import { loadEmbedderConfig } from './embedder-config.js';
import { embedderService } from './embedder-service.js';
import { loadEmbeddingModel } from './embedding-model.js';

const log = createLogger({ service: 'embedder', level: 'silent' });

/** A 150x150 RGB crop of one grey level (enough to exercise the model; faces are tested elsewhere). */
const crop = (level: number) => create(AlignedFaceSchema, { pixels: new Uint8Array(150 * 150 * 3).fill(level), width: 150, height: 150, format: PixelFormat.RGB8 });


describe('embedder', { skip: skipUnlessPresent(MODEL_MIRROR) }, () => {
  let root: string;
  before(async () => {
    // A registry of our own: the hot-swap test promotes a new version in it.
    root = await mkdtemp(join(tmpdir(), 'faceprint-embedder-'));
    await cp(await testModelRegistry(), root, { recursive: true });
  });
  after(() => rm(root, { recursive: true, force: true }));

  describe('Batcher', () => {
    it('runs concurrent crops as one batch, with the same results as one at a time', async () => {
      const model = await loadEmbeddingModel(new ModelRegistry(root), 'face-recognition-net', undefined, { executionProviders: ['cpu'], threads: 0, spin: false });
      const batches: number[] = [];
      const batcher = new Batcher({ maxBatch: 64, maxDelayMs: 50, maxQueue: 100 }, (size) => batches.push(size));
      const faces = [10, 80, 160, 240].map((level) => crop(level));
      const together = await Promise.all(faces.map((face) => batcher.submit(model, [face])));
      assert.deepEqual(batches, [4]);
      for (const [i, face] of faces.entries()) {
        const tensor = model.batchTensor(1);
        model.writeCrop(face, tensor, 0);
        const [alone] = await model.run(tensor, 1);
        const difference = Math.max(...alone!.map((v, k) => Math.abs(v - together[i]![0]![k]!)));
        assert.ok(difference < 1e-5, `batched and single results differ by ${difference}`);
      }
      await model.release();
    });

    it('forms the next batch from the crops that arrive while one runs, and keeps each crop with its own result', async () => {
      const model = await loadEmbeddingModel(new ModelRegistry(root), 'face-recognition-net', undefined, { executionProviders: ['cpu'], threads: 0, spin: false });
      const batches: number[] = [];
      const batcher = new Batcher({ maxBatch: 64, maxDelayMs: 0, maxQueue: 100 }, (size) => batches.push(size));
      const first = batcher.submit(model, [20, 40, 60, 80, 100, 120, 140, 160].map(crop)); // runs at once
      const later = [30, 90, 150, 210].map((level) => batcher.submit(model, [crop(level)]));
      assert.equal(batcher.depth, 4, 'the crops behind the running batch wait, preprocessed, in the next one');
      const results = [...(await first), ...(await Promise.all(later)).flat()];
      assert.deepEqual(batches, [8, 4]);
      // A second round reuses the tensors the first handed back; every crop must still get its own embedding.
      const again = await Promise.all([20, 40, 60, 80, 100, 120, 140, 160, 30, 90, 150, 210].map((level) => batcher.submit(model, [crop(level)])));
      for (const [i, [embedding]] of again.entries()) {
        const difference = Math.max(...embedding!.map((v, k) => Math.abs(v - results[i]![k]!)));
        assert.ok(difference < 1e-5, `crop ${i}: the two rounds differ by ${difference}`);
      }
      await model.release();
    });

    it('refuses work beyond the queue limit at once with RESOURCE_EXHAUSTED', async () => {
      const model = await loadEmbeddingModel(new ModelRegistry(root), 'face-recognition-net', undefined, { executionProviders: ['cpu'], threads: 0, spin: false });
      const batcher = new Batcher({ maxBatch: 4, maxDelayMs: 300, maxQueue: 3 });
      const face = crop(1);
      const accepted = batcher.submit(model, [face, face]);
      assert.throws(() => batcher.submit(model, [face, face]), (error: FaceprintError) => error.code === status.RESOURCE_EXHAUSTED && /queue is full \(2 of 3/.test(error.message));
      assert.equal((await accepted).length, 2, 'work accepted before is not lost');
      await model.release();
    });
  });

  describe('EmbedderService', () => {
    let server: FaceprintServer;
    let embedder: ServiceClient<typeof EmbedderService>;
    let close: (() => Promise<void>) | undefined;
    before(async () => {
      const setup = embedderService(loadEmbedderConfig({ FACEPRINT_MODEL_REGISTRY: root, FACEPRINT_EMBEDDER_WATCH_INTERVAL_MS: '50' }), { log });
      server = await startServer({ config: loadServerConfig('embedder', { FACEPRINT_GRPC_PORT: '0' }), log, services: setup.services });
      embedder = createClient(EmbedderService, server.address, { retry: false });
      await rejectsWith(embedder.embed({ faces: [crop(1)] }), status.UNAVAILABLE, /still loading/);
      await setup.ready!();
      close = setup.close;
    });
    after(async () => {
      embedder.close();
      await server.shutdown();
      await close?.();
    });

    it('returns L2-normalised 128-D embeddings and the model that made them', async () => {
      const response = await embedder.embed({ faces: [crop(60), crop(200)] });
      assert.equal(response.embeddings.length, 2);
      for (const embedding of response.embeddings) {
        const vector = decodeEmbedding(embedding.vector, embedding.dim);
        assert.equal(vector.length, 128);
        assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-5);
        assert.deepEqual([embedding.model?.name, embedding.model?.version], ['face-recognition-net', 1]);
      }
      assert.match(response.model?.sha256 ?? '', /^[0-9a-f]{64}$/);
    });

    it('refuses crops of the wrong size, a wrong pin and an empty call', async () => {
      await rejectsWith(embedder.embed({ faces: [{ ...crop(1), width: 112, height: 112 }] }), status.INVALID_ARGUMENT, /faces\[0\]: must be 150x150/);
      await rejectsWith(embedder.embed({ faces: [{ ...crop(1), format: PixelFormat.UNSPECIFIED }] }), status.INVALID_ARGUMENT, /PIXEL_FORMAT_RGB8/);
      await rejectsWith(embedder.embed({ faces: [] }), status.INVALID_ARGUMENT, /at least one crop/);
      await rejectsWith(embedder.embed({ faces: [crop(1)], model: { name: 'face-recognition-net', version: 7 } }), status.FAILED_PRECONDITION, /serves face-recognition-net v1, not the requested/);
    });

    it('streams embeddings for bulk work, matched by item id', async () => {
      async function* items() {
        for (const id of ['a', 'b', 'c', 'd']) yield { itemId: id, face: crop(id.charCodeAt(0)) };
      }
      const ids: string[] = [];
      for await (const response of embedder.embedStream(items())) ids.push(response.itemId);
      assert.deepEqual(ids.sort(), ['a', 'b', 'c', 'd']);
    });

    it('keeps answering while a batch runs (inference is on its own thread)', async () => {
      const order: string[] = [];
      const big = embedder.embed({ faces: Array.from({ length: 64 }, (_, i) => crop(i)) }).then(() => order.push('batch of 64'));
      await sleep(20); // the batch has started: it takes far longer than this
      await embedder.modelStatus({}).then(() => order.push('model status'));
      await big;
      assert.deepEqual(order, ['model status', 'batch of 64']);
    });

    it('swaps to a promoted version without failing a request, then releases the old one', async () => {
      const registry = new ModelRegistry(root);
      const current = await registry.loadModel('face-recognition-net');
      // Version 2: the same graph with an unknown trailing field, so a different file and sha256.
      await registry.publish({ name: 'face-recognition-net', manifest: current.manifest, model: new Uint8Array([...current.bytes, 0x3a, 0x00]) });

      let stop = false;
      const versions: number[] = [];
      const failures: unknown[] = [];
      const load = (async () => {
        while (!stop) {
          await Promise.all(
            [0, 1, 2, 3].map(() =>
              embedder.embed({ faces: [crop(90), crop(91)] }).then(
                (r) => versions.push(r.model!.version),
                (error: unknown) => failures.push(error),
              ),
            ),
          );
        }
      })();
      await sleep(200);
      await registry.promote('face-recognition-net', 2);
      const deadline = Date.now() + 30_000;
      while (!versions.includes(2) && Date.now() < deadline) await sleep(50);
      await sleep(300);
      stop = true;
      await load;
      assert.deepEqual(failures, []);
      assert.ok(versions.includes(1) && versions.includes(2), 'served by v1, then v2');
      assert.ok(versions.lastIndexOf(1) < versions.indexOf(2) + 8, 'no v1 answers long after the swap');

      const deadlineRelease = Date.now() + 5_000;
      let status_ = await embedder.modelStatus({});
      while (status_.models.length > 1 && Date.now() < deadlineRelease) {
        await sleep(100);
        status_ = await embedder.modelStatus({});
      }
      assert.equal(status_.serving?.version, 2);
      assert.deepEqual(status_.models.map((m) => [m.model?.version, m.state]), [[2, ModelState.READY]]);
      assert.equal(status_.maxBatchSize, 64);
    });
  });
});
