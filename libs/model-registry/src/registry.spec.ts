import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ModelTask } from '@faceprint/contracts/trainer';
import { MODEL_FILE, ModelRegistry, RegistryError, sha256Hex } from './registry.js';

const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

async function emptyRegistry(): Promise<ModelRegistry> {
  const root = await mkdtemp(join(tmpdir(), 'faceprint-registry-'));
  roots.push(root);
  return new ModelRegistry(root);
}

const draft = (bytes: number[]) => ({
  name: 'toy-embedder',
  manifest: { task: ModelTask.EMBEDDER, license: 'MIT', embeddingDim: 4 },
  model: new Uint8Array(bytes),
});

function failsWith(kind: string, pattern: RegExp) {
  return (error: unknown) => error instanceof RegistryError && error.kind === kind && pattern.test(error.message);
}

describe('ModelRegistry', () => {
  it('publishes numbered, immutable versions and returns an identical file as the existing version', async () => {
    const registry = await emptyRegistry();
    const first = await registry.publish(draft([1, 2, 3]));
    assert.equal(first.created, true);
    assert.equal(first.manifest.model?.version, 1);
    assert.equal(first.manifest.model?.sha256, sha256Hex(new Uint8Array([1, 2, 3])));
    assert.equal(first.manifest.format, 'onnx');
    assert.ok(first.manifest.createTime);

    const again = await registry.publish(draft([1, 2, 3]));
    assert.equal(again.created, false);
    assert.equal(again.manifest.model?.version, 1);

    const second = await registry.publish(draft([4, 5]));
    assert.equal(second.manifest.model?.version, 2);
    assert.deepEqual(await registry.listVersions('toy-embedder'), [1, 2]);
    assert.deepEqual(await readdir(join(registry.root, 'toy-embedder')), ['1', '2'], 'no staging directories left behind');
  });

  it('records a calibration in a manifest, replacing earlier thresholds and keeping the model verified', async () => {
    const registry = await emptyRegistry();
    await registry.publish({ ...draft([7, 7]), manifest: { ...draft([]).manifest, metrics: { lfw_accuracy: 0.98 } } });
    await registry.recordCalibration('toy-embedder', 1, { thresholds: [{ far: 1e-3, threshold: 0.9, dataset: 'old' }] });
    const updated = await registry.recordCalibration('toy-embedder', 1, { thresholds: [{ far: 1e-4, threshold: 0.95, dataset: 'new', tar: 0.8 }], metrics: { impostor_pairs: 1000 } });
    assert.deepEqual(updated.thresholds.map((t) => [t.far, t.dataset]), [[1e-4, 'new']]);
    const read = await registry.readManifest('toy-embedder', 1);
    assert.deepEqual(read.metrics, { lfw_accuracy: 0.98, impostor_pairs: 1000 });
    assert.equal(read.thresholds[0]?.threshold, 0.95);
    await registry.loadModel('toy-embedder', 1); // the model file and its sha256 are untouched
    assert.deepEqual(await readdir(join(registry.root, 'toy-embedder', '1')), ['manifest.json', MODEL_FILE].sort(), 'no staging files left behind');
  });

  it('lists models with their current version and loads the current one', async () => {
    const registry = await emptyRegistry();
    await registry.publish(draft([1]));
    await registry.publish(draft([2]));
    await assert.rejects(registry.loadModel('toy-embedder'), failsWith('NOT_FOUND', /has no current version/));
    assert.deepEqual(await registry.promote('toy-embedder', 2), { previous: undefined, current: 2 });
    assert.deepEqual(await registry.listModels(), [{ name: 'toy-embedder', task: ModelTask.EMBEDDER, currentVersion: 2, versions: [1, 2] }]);
    const loaded = await registry.loadModel('toy-embedder');
    assert.deepEqual([...loaded.bytes], [2]);
    assert.equal(loaded.manifest.embeddingDim, 4);
  });

  it('refuses a model file whose sha256 no longer matches its manifest, naming the file', async () => {
    const registry = await emptyRegistry();
    await registry.publish(draft([1, 2, 3]));
    await writeFile(join(registry.versionDirectory('toy-embedder', 1), MODEL_FILE), new Uint8Array([1, 2, 4]));
    await assert.rejects(registry.loadModel('toy-embedder', 1), failsWith('INTEGRITY', /toy-embedder\/1\/model\.onnx: sha256 [0-9a-f]{64} does not match/));
    await assert.rejects(registry.promote('toy-embedder', 1), failsWith('INTEGRITY', /does not match/));
    assert.equal(await registry.currentVersion('toy-embedder'), undefined);
  });

  it('refuses unknown versions, bad names and drafts without a task', async () => {
    const registry = await emptyRegistry();
    await assert.rejects(registry.promote('toy-embedder', 7), failsWith('NOT_FOUND', /version 7 not found/));
    await assert.rejects(registry.listVersions('../etc'), failsWith('INVALID', /invalid model name/));
    await assert.rejects(registry.publish({ name: 'x', manifest: {}, model: new Uint8Array([1]) }), failsWith('INVALID', /needs a task/));
  });

  it('tells a watching reader about a promotion', async () => {
    const registry = await emptyRegistry();
    await registry.publish(draft([1]));
    await registry.publish(draft([2]));
    await registry.promote('toy-embedder', 1);
    const seen: (number | undefined)[] = [];
    const stop = registry.watchCurrent('toy-embedder', (version) => seen.push(version), { intervalMs: 20 });
    await sleep(100);
    await registry.promote('toy-embedder', 2);
    await sleep(100);
    stop();
    assert.deepEqual(seen, [1, 2]);
  });
});
