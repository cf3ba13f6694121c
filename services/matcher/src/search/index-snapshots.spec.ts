/**
 * Index snapshots: a round trip of exact and HNSW partitions, nothing plaintext on disk, and every
 * snapshot that must not be served (changed, cut short, of another gallery or master key) skipped.
 * Then the matcher: a restart from a snapshot, and a template erased after the snapshot was taken
 * absent once the matcher serves again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErasureReason } from '@faceprint/contracts/common';
import { createLogger } from '@faceprint/telemetry';
import { consent, embedding, nearby, randomUnitVector, seededRandom, startInProcessMatcher, testEmbedderRegistry, type TestModels } from '../test-support.js';
import { LocalMasterKey } from '../compliance/data-keys.js';
import { IndexSnapshots } from './index-snapshots.js';
import { VectorIndex } from './vector-index.js';

const random = seededRandom(11);
const pack = (vectors: Float32Array[]) => {
  const packed = new Float32Array(vectors.length * vectors[0]!.length);
  vectors.forEach((v, i) => packed.set(v, i * v.length));
  return packed;
};

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('index snapshots', () => {
  const log = createLogger({ service: 'matcher', level: 'silent' });
  const masterKey = new LocalMasterKey(randomBytes(32));
  const identity = { schema: 'faceprint', galleryId: '6f1d2c1e-0000-4000-8000-000000000001' };
  const bank = { tenantId: 'bank', modelName: 'face-recognition-net', modelVersion: 1 };
  const shop = { tenantId: 'shop', modelName: 'face-recognition-net', modelVersion: 1 };
  const graphVectors = Array.from({ length: 400 }, () => randomUnitVector(random, 32));
  const flatVectors = Array.from({ length: 30 }, () => randomUnitVector(random, 32));
  let root: string;

  /** An index of two partitions: a graph (bank) and a flat one (shop). */
  const makeIndex = () => {
    const index = new VectorIndex(100);
    index.reserve(bank, 32, graphVectors.length);
    index.add(bank, 32, graphVectors.map((_, i) => BigInt(i + 1)), pack(graphVectors));
    index.add(shop, 32, flatVectors.map((_, i) => BigInt(1000 + i)), pack(flatVectors));
    return index;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'faceprint-snapshots-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('saves and loads exact and HNSW partitions with their position; the files hold no plaintext vector', async () => {
    const dir = join(root, 'round-trip');
    const index = makeIndex();
    assert.deepEqual(index.entries().map((e) => e.partition.mode).sort(), ['exact', 'hnsw']);
    const snapshots = await IndexSnapshots.open(dir, masterKey, identity, log);
    const saved = await snapshots.save(index, 1234n);
    assert.deepEqual([saved.partitions, saved.templates, saved.position], [2, 430, 1234n]);

    const loaded = await (await IndexSnapshots.open(dir, masterKey, identity, log)).loadNewest();
    assert.ok(loaded);
    assert.equal(loaded.position, 1234n);
    const restored = new VectorIndex(100);
    for (const { key, partition } of loaded.partitions) restored.restore(key, partition);
    assert.deepEqual(restored.entries().map((e) => [e.key.tenantId, e.partition.mode, e.partition.size]).sort(), [['bank', 'hnsw', 400], ['shop', 'exact', 30]]);
    for (const [i, vector] of graphVectors.entries()) assert.equal(restored.partition(bank)!.search(vector, 1).keys[0], BigInt(i + 1));
    for (const [i, vector] of flatVectors.entries()) assert.deepEqual(restored.partition(shop)!.search(vector, 1).keys[0], BigInt(1000 + i));

    // No vector's bytes, nor any 16 bytes of one, are in any file of the snapshot directory.
    const files = await Promise.all((await filesUnder(dir)).map((file) => readFile(file)));
    for (const vector of [...graphVectors.slice(0, 20), ...flatVectors]) {
      const bytes = Buffer.from(vector.buffer, vector.byteOffset, 16);
      assert.ok(!files.some((file) => file.includes(bytes)), 'a plaintext vector is on disk');
    }
  });

  it('replaces the previous snapshot: its key is destroyed and its files removed', async () => {
    const dir = join(root, 'replace');
    const snapshots = await IndexSnapshots.open(dir, masterKey, identity, log);
    const first = await snapshots.save(makeIndex(), 10n);
    const firstFolder = join(dir, `snapshot-${first.snapshotId}`);
    const copy = join(root, 'replace-copy');
    await cp(firstFolder, copy, { recursive: true });
    const second = await snapshots.save(makeIndex(), 20n);
    assert.deepEqual((await readdir(dir)).filter((name) => name.startsWith('snapshot-')), [`snapshot-${second.snapshotId}`]);
    // A copy of the first snapshot's files, put back, no longer opens: its key is gone.
    await cp(copy, firstFolder, { recursive: true });
    const loaded = await snapshots.loadNewest();
    assert.equal(loaded?.snapshotId, second.snapshotId);
    await rm(join(dir, `snapshot-${second.snapshotId}`), { recursive: true });
    assert.equal(await snapshots.loadNewest(), undefined, 'the first snapshot has no key any more');
  });

  it('skips a snapshot that was changed, cut short, or is of another gallery, schema or master key', async () => {
    const cases: [string, (dir: string, snapshotId: string) => Promise<void>, Partial<typeof identity> | undefined, LocalMasterKey | undefined][] = [
      ['changed', async (dir, id) => {
        const file = join(dir, `snapshot-${id}`, 'partition-0.sealed');
        const bytes = await readFile(file);
        bytes[bytes.length >> 1]! ^= 0x40;
        await writeFile(file, bytes);
      }, undefined, undefined],
      ['cut short', async (dir, id) => truncate(join(dir, `snapshot-${id}`, 'partition-1.sealed'), 100), undefined, undefined],
      ['manifest edited', async (dir, id) => {
        const path = join(dir, `snapshot-${id}`, 'manifest.json');
        await writeFile(path, (await readFile(path, 'utf8')).replace('"position": "55"', '"position": "56"'));
      }, undefined, undefined],
      ['another gallery', async () => undefined, { galleryId: '6f1d2c1e-0000-4000-8000-000000000002' }, undefined],
      ['another schema', async () => undefined, { schema: 'other' }, undefined],
      ['another master key', async () => undefined, undefined, new LocalMasterKey(randomBytes(32))],
    ];
    for (const [name, spoil, otherIdentity, otherKey] of cases) {
      const dir = join(root, `spoiled-${name.replaceAll(' ', '-')}`);
      const { snapshotId } = await (await IndexSnapshots.open(dir, masterKey, identity, log)).save(makeIndex(), 55n);
      await spoil(dir, snapshotId);
      const reader = await IndexSnapshots.open(dir, otherKey ?? masterKey, { ...identity, ...otherIdentity }, log);
      assert.equal(await reader.loadNewest(), undefined, name);
    }
  });
});

describe('a matcher restarting from its index snapshot', () => {
  let models: TestModels;
  let root: string;
  before(async () => {
    models = await testEmbedderRegistry();
    root = await mkdtemp(join(tmpdir(), 'faceprint-snapshot-matcher-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(`${join(root, 'gallery')}-keys`, { recursive: true, force: true });
    await rm(models.root, { recursive: true, force: true });
  });

  it('serves what it held, and a template erased after the snapshot it starts from is gone before it serves', async () => {
    const indexDir = join(root, 'index');
    // Exact search up to 20 templates: the 60 here are in an HNSW graph, saved as one.
    const env = { FACEPRINT_MATCHER_DATA_DIR: join(root, 'gallery'), FACEPRINT_MODEL_REGISTRY: models.root, FACEPRINT_MATCHER_INDEX_DIR: indexDir, FACEPRINT_MATCHER_EXACT_SEARCH_LIMIT: '20' };
    const operator = { tenantId: 'bank', callerId: 'backend', roles: ['operator'] };
    const officer = { tenantId: 'bank', callerId: 'dpo@example.org', roles: ['compliance'] };
    const rng = seededRandom(5);
    const faces = Array.from({ length: 20 }, () => randomUnitVector(rng));
    const snapshotsIn = async () => (await readdir(indexDir)).filter((name) => name.startsWith('snapshot-'));
    /** Where the index came from at a start: 'snapshot' or 'database'. */
    let loadedFrom: unknown;
    const onLog = (line: Record<string, unknown>) => {
      if (line.msg === 'gallery index loaded') loadedFrom = line.from;
    };

    let matcher = await startInProcessMatcher(env, onLog);
    assert.equal(loadedFrom, 'database', 'the first start builds the index from the database');
    for (const [i, face] of faces.entries()) {
      await matcher.matcher.enrollTemplates({ context: operator, requestId: `s${i}`, subjectId: `subject-${i}`, consent: consent(), templates: [0, 1, 2].map(() => ({ embedding: embedding(nearby(face, rng, 0.05), models.v1) })) });
    }
    await matcher.close(); // a clean stop saves a snapshot
    const [taken] = await snapshotsIn();
    assert.ok(taken, 'a snapshot was saved at the stop');
    const manifest = JSON.parse(await readFile(join(indexDir, taken, 'manifest.json'), 'utf8')) as { partitions: { mode: string; count: number }[] };
    assert.deepEqual(manifest.partitions.map((p) => [p.mode, p.count]), [['hnsw', 60]]);
    const older = join(root, 'older-index');
    await cp(indexDir, older, { recursive: true });

    // Erase subject-3, stop; then start from the older snapshot, as a replica that crashed before it saved again would.
    matcher = await startInProcessMatcher(env, onLog);
    assert.equal(loadedFrom, 'snapshot');
    await matcher.compliance.eraseSubject({ context: officer, subjectId: 'subject-3', requestRef: 'DSR-3', reason: ErasureReason.SUBJECT_REQUEST });
    await matcher.close();
    await rm(indexDir, { recursive: true });
    await cp(older, indexDir, { recursive: true });

    matcher = await startInProcessMatcher(env, onLog);
    assert.equal(loadedFrom, 'snapshot', 'the older snapshot is loaded, and the log replayed on it');
    try {
      for (const [i, face] of faces.entries()) {
        const { candidates } = await matcher.matcher.identify({ context: operator, probe: embedding(face, models.v1), topK: 1 });
        if (i === 3) assert.notEqual(candidates[0]?.subjectId, 'subject-3', 'the erased subject is not found');
        else assert.equal(candidates[0]?.subjectId, `subject-${i}`);
      }
      // The snapshot that held subject-3 is replaced at once (and so destroyed) by one of the index
      // as it was before serving: the log replayed, subject-3's three templates removed.
      for (const deadline = Date.now() + 10_000; (await snapshotsIn()).includes(taken) && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
      const [replaced] = await snapshotsIn();
      assert.ok(replaced && replaced !== taken, 'the older snapshot is gone');
      const after = JSON.parse(await readFile(join(indexDir, replaced, 'manifest.json'), 'utf8')) as { partitions: { mode: string; count: number }[] };
      assert.deepEqual(after.partitions.map((p) => [p.mode, p.count]), [['hnsw', 57]]);
    } finally {
      await matcher.close();
    }
  });
});
