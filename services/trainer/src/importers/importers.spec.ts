import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decisionRates, perComparisonRates } from '@faceprint/contracts';
import { ModelTask } from '@faceprint/contracts/trainer';
import { ModelRegistry, sha256Hex } from '@faceprint/model-registry';
import { OnnxGraphBuilder, serializeModel } from '@faceprint/onnx';
import { MODEL_MIRROR, skipUnlessPresent } from '@faceprint/testing';
import { locateFaceApiPackage, locatePackage } from './face-api/importers.js';
import { readWeights } from './face-api/weights.js';
import { IMPORTERS, runImport, type Importer } from './index.js';
import { YUNET_N_SOURCE } from './yunet.js';

const temporary: string[] = [];
after(() => Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true }))));
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `faceprint-${prefix}-`));
  temporary.push(dir);
  return dir;
}

/** True when nothing at all was written under the registry root. */
async function isEmpty(root: string): Promise<boolean> {
  const entries = await readdir(root, { recursive: true }).catch(() => []);
  return entries.length === 0;
}

describe('importers', () => {
  it('build FaceRecognitionNet and the landmark net from the npm package into a registry', async () => {
    const registry = new ModelRegistry(await tempDir('registry'));
    const recognition = await runImport(registry, IMPORTERS.get('face-recognition-net')!, { mirrorDir: undefined }, { promoteIfFirst: true });
    assert.equal(recognition.created, true);
    assert.equal(recognition.promoted, true);
    const { manifest, bytes } = await registry.loadModel('face-recognition-net');
    assert.equal(manifest.task, ModelTask.EMBEDDER);
    assert.equal(manifest.embeddingDim, 128);
    assert.equal(manifest.alignment?.width, 150);
    assert.equal(manifest.alignment?.points.length, 5);
    assert.match(manifest.source?.locator ?? '', /^@vladmandic\/face-api@1\.7\.15$/);
    assert.equal(manifest.model?.sha256, sha256Hex(bytes));
    // The shipped calibration was measured on exactly this file, so the conversion is unchanged
    // and the matcher gets thresholds without the evaluation data.
    assert.equal(manifest.model?.sha256, IMPORTERS.get('face-recognition-net')!.calibration?.sha256);
    assert.deepEqual(decisionRates(manifest.thresholds).map((t) => t.far), [1e-3, 1e-4, 1e-5]);
    // And the per-comparison rates far / k (k = 2..10) a verify over several templates uses: a lower rate, a higher threshold.
    const perComparison = manifest.thresholds.filter((t) => t.perComparison);
    assert.equal(perComparison.length, perComparisonRates([1e-3, 1e-4, 1e-5]).length - 3);
    const byRate = [...manifest.thresholds].sort((a, b) => b.far - a.far);
    assert.ok(byRate.every((t, i, all) => t.threshold > 0.5 && t.threshold < 1 && (i === 0 || t.threshold > all[i - 1]!.threshold)));

    const landmarks = await runImport(registry, IMPORTERS.get('face-landmark-68')!, { mirrorDir: undefined }, { promoteIfFirst: true });
    assert.equal(landmarks.manifest.task, ModelTask.LANDMARKS);

    const again = await runImport(registry, IMPORTERS.get('face-recognition-net')!, { mirrorDir: undefined }, { promoteIfFirst: true });
    assert.deepEqual([again.created, again.promoted, again.manifest.model?.version], [false, false, 1], 'the conversion is deterministic and idempotent');
  });

  it('imports YuNet-n from the mirror directory, checking its pinned sha256', { skip: skipUnlessPresent(join(MODEL_MIRROR, YUNET_N_SOURCE.mirrorPath)) }, async () => {
    const registry = new ModelRegistry(await tempDir('registry'));
    const result = await runImport(registry, IMPORTERS.get('yunet-n')!, { mirrorDir: MODEL_MIRROR }, { promoteIfFirst: true });
    assert.equal(result.manifest.model?.sha256, YUNET_N_SOURCE.sha256);
    assert.equal(result.manifest.task, ModelTask.DETECTOR);
    assert.deepEqual(result.manifest.inputs[0]?.shape, [-1n, 3n, -1n, -1n]);
    assert.equal(result.manifest.outputs.length, 12);
    assert.equal(await registry.currentVersion('yunet-n'), 1);
  });

  it('needs no download or mirror once the pinned file is in the registry', { skip: skipUnlessPresent(join(MODEL_MIRROR, YUNET_N_SOURCE.mirrorPath)) }, async () => {
    const registry = new ModelRegistry(await tempDir('registry'));
    await runImport(registry, IMPORTERS.get('yunet-n')!, { mirrorDir: MODEL_MIRROR }, { promoteIfFirst: true });
    const offline = await runImport(registry, IMPORTERS.get('yunet-n')!, { mirrorDir: await tempDir('empty-mirror') }, { promoteIfFirst: true });
    assert.deepEqual([offline.created, offline.manifest.model?.version], [false, 1]);
  });

  it('refuses a mirror file with the wrong sha256 and writes nothing', { skip: skipUnlessPresent(join(MODEL_MIRROR, YUNET_N_SOURCE.mirrorPath)) }, async () => {
    const mirror = await tempDir('mirror');
    const target = join(mirror, YUNET_N_SOURCE.mirrorPath);
    await mkdir(join(target, '..'), { recursive: true });
    await copyFile(join(MODEL_MIRROR, 'detectors/yunet/yunet_n_320_320.onnx'), target); // a real model, but not the pinned one
    const root = await tempDir('registry');
    await assert.rejects(
      runImport(new ModelRegistry(root), IMPORTERS.get('yunet-n')!, { mirrorDir: mirror }, { promoteIfFirst: true }),
      new RegExp(`yunet_n_dynamic\\.onnx: sha256 is [0-9a-f]{64}, expected ${YUNET_N_SOURCE.sha256}`),
    );
    assert.ok(await isEmpty(root));
  });

  it('names the missing file when the mirror lacks it', async () => {
    await assert.rejects(
      runImport(new ModelRegistry(await tempDir('registry')), IMPORTERS.get('yunet-n')!, { mirrorDir: await tempDir('empty-mirror') }, { promoteIfFirst: true }),
      /model mirror: cannot read .*detectors\/yunet\/yunet_n_dynamic\.onnx/,
    );
  });

  it('refuses a model ONNX Runtime cannot run, naming the operator, and writes nothing', async () => {
    const g = new OnnxGraphBuilder('bad');
    const x = g.input('image', ['batch', 3]);
    g.output(g.node('FancyUnknownOp', [x]), 'out', ['batch', 3]);
    const broken: Importer = {
      name: 'broken',
      summary: 'a model with an operator no runtime knows',
      build: async () => ({
        model: serializeModel(g.build({ producerName: 'test', producerVersion: '0' })),
        probeShape: [1, 3],
        name: 'broken',
        manifest: { task: ModelTask.EMBEDDER },
      }),
    };
    const root = await tempDir('registry');
    await assert.rejects(runImport(new ModelRegistry(root), broken, { mirrorDir: undefined }, { promoteIfFirst: true }), /broken: ONNX Runtime cannot load the model: .*FancyUnknownOp/);
    assert.ok(await isEmpty(root));
  });

  it('refuses a model whose outputs do not match its manifest', async () => {
    const g = new OnnxGraphBuilder('wrong-shape');
    const x = g.input('image', ['batch', 3]);
    g.output(g.node('Relu', [x]), 'embedding', ['batch', 3]);
    const wrong: Importer = {
      name: 'wrong-shape',
      summary: 'claims 128 outputs, has 3',
      build: async () => ({
        model: serializeModel(g.build({ producerName: 'test', producerVersion: '0' })),
        probeShape: [1, 3],
        name: 'wrong-shape',
        manifest: { task: ModelTask.EMBEDDER, outputs: [{ name: 'embedding', shape: [-1n, 128n] }] },
      }),
    };
    await assert.rejects(runImport(new ModelRegistry(await tempDir('registry')), wrong, { mirrorDir: undefined }, { promoteIfFirst: true }), /output "embedding" has shape \[1, 3\], the manifest says \[-1, 128\]/);
  });
});

describe('face-api.js weights', () => {
  async function copyOfRecognitionWeights(): Promise<{ manifest: string; shard: string }> {
    const { directory } = await locateFaceApiPackage();
    const dir = await tempDir('weights');
    await copyFile(join(directory, 'model/face_recognition_model-weights_manifest.json'), join(dir, 'face_recognition_model-weights_manifest.json'));
    await copyFile(join(directory, 'model/face_recognition_model.bin'), join(dir, 'face_recognition_model.bin'));
    return { manifest: join(dir, 'face_recognition_model-weights_manifest.json'), shard: join(dir, 'face_recognition_model.bin') };
  }

  it('refuses a truncated shard, naming the weight that does not fit', async () => {
    const { manifest, shard } = await copyOfRecognitionWeights();
    const bytes = await readFile(shard);
    await writeFile(shard, bytes.subarray(0, bytes.length - 1000));
    await assert.rejects(readWeights(manifest), /face_recognition_model\.bin is truncated: weight "fc" needs bytes up to \d+/);
  });

  it('refuses a shard with trailing bytes as corrupt', async () => {
    const { manifest, shard } = await copyOfRecognitionWeights();
    await writeFile(shard, Buffer.concat([await readFile(shard), Buffer.alloc(16)]));
    await assert.rejects(readWeights(manifest), /has 16 bytes more than its weights: corrupt or mismatched/);
  });

  it('refuses a manifest that is not JSON', async () => {
    const { manifest } = await copyOfRecognitionWeights();
    await writeFile(manifest, '{ truncated');
    await assert.rejects(readWeights(manifest), /not a weight manifest/);
  });

  it('names a missing npm package', async () => {
    await assert.rejects(locatePackage('@vladmandic/no-such-package'), /the npm package @vladmandic\/no-such-package is not installed \(run npm ci\)/);
  });
});
