/**
 * Erasure leaves nothing on disk that names the subject or opens its templates. What was done by
 * hand against the default gallery (whose erasure could then be reversed from its files), as a
 * test: enrol a subject with three templates and their kept crops, erase it, stop, then read every
 * file the gallery and its keys left (table files, WAL, the key store) as someone holding a copy
 * of them would, and try to open the erased templates with every key that is left. On the embedded
 * gallery (PGlite) and on a PostgreSQL server of the test's own (its data directory is read).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { encodeEmbedding } from '@faceprint/contracts';
import { ErasureReason, PixelFormat } from '@faceprint/contracts/common';
import { skipUnlessPrivatePostgres, startPrivatePostgres, type PrivatePostgres } from '@faceprint/testing';
import { createLogger } from '@faceprint/telemetry';
import pg from 'pg';
import { consent, embedding, nearby, randomUnitVector, seededRandom, startInProcessMatcher, testEmbedderRegistry, type TestModels } from '../test-support.js';
import { dataKeyContext, LocalMasterKey, open, templateContext } from './data-keys.js';
import { FileKeyStore } from './key-store.js';
import { IndexSnapshots } from '../search/index-snapshots.js';

const operator = { tenantId: 'bank', callerId: 'backend', roles: ['operator'] };
const officer = { tenantId: 'bank', callerId: 'dpo@example.org', roles: ['compliance'] };

/** The subject's rows as the files hold them: its key id and each template's sealed vector and crop. */
interface SealedRows {
  readonly keyId: string;
  readonly templates: { templateId: string; vector: Buffer; crop: Buffer }[];
  /** The planner's statistics (pg_statistic) hold the subject id, as ANALYZE (or autovacuum) samples it. */
  readonly inStatistics: boolean;
}

// Statistics as autovacuum would have gathered them on a live gallery: they sample subject ids.
const ANALYZE_SQL = 'ANALYZE faceprint.subjects, faceprint.subject_pseudonyms';
const IN_STATISTICS_SQL = `SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = 'faceprint' AND tablename = 'subjects' AND attname = 'subject_id'
  AND (coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, '')) LIKE '%' || $1 || '%'`;

const SEALED_ROWS_SQL = `SELECT s.data_key_id AS key_id, t.template_id, t.vector, t.crop FROM faceprint.subjects s
  JOIN faceprint.templates t ON t.subject_pk = s.subject_pk WHERE s.subject_id = $1 ORDER BY t.template_pk`;

for (const backend of ['embedded PGlite', 'PostgreSQL'] as const) {
  describe(`what an erasure leaves on disk, ${backend}`, { skip: backend === 'PostgreSQL' ? skipUnlessPrivatePostgres() : false }, () => {
    let models: TestModels;
    let root: string;
    let server: PrivatePostgres | undefined;

    before(async () => {
      models = await testEmbedderRegistry();
      root = await mkdtemp(join(tmpdir(), 'faceprint-residue-'));
      // A server that removes WAL segments instead of recycling them (docs/compliance.md).
      if (backend === 'PostgreSQL') server = startPrivatePostgres({ wal_recycle: 'off' });
    });
    after(async () => {
      await server?.remove();
      await rm(root, { recursive: true, force: true });
      await rm(models.root, { recursive: true, force: true });
    });

    it('leaves no file that names the subject, holds its data, or opens its templates', async () => {
      const dataDir = join(root, 'gallery');
      const keyDir = join(root, 'gallery-keys'); // the default: beside the data directory
      const indexDir = join(root, 'gallery-index'); // the embedded gallery's default; set for PostgreSQL too
      const env = { FACEPRINT_MATCHER_DATA_DIR: dataDir, FACEPRINT_MODEL_REGISTRY: models.root, FACEPRINT_MATCHER_INDEX_DIR: indexDir, ...(server ? { FACEPRINT_DATABASE_URL: server.url } : {}) };
      const scanned = [server?.dataDir ?? dataDir, keyDir, indexDir];
      const subjectId = `residue-${randomBytes(6).toString('hex')}`;
      const branch = `branch-${randomBytes(6).toString('hex')}`;
      const random = seededRandom(41);
      const face = randomUnitVector(random);
      const faces = [face, nearby(face, random, 0.03), nearby(face, random, 0.03)];
      const crops = faces.map(() => Uint8Array.from({ length: 150 * 150 * 3 }, () => Math.floor(random() * 256)));

      let matcher = await startInProcessMatcher(env);
      await matcher.matcher.enrollTemplates({ context: operator, requestId: 'keeper', subjectId: 'keeper', consent: consent(), templates: [{ embedding: embedding(randomUnitVector(random), models.v1) }] });
      await matcher.matcher.enrollTemplates({
        context: operator,
        requestId: `${subjectId}-enrolment`,
        subjectId,
        subjectMetadata: { branch },
        consent: { ...consent(), retainAlignedCrops: true },
        templates: faces.map((f, i) => ({ embedding: embedding(f, models.v1), quality: 0.9, alignedCrop: { pixels: crops[i]!, width: 150, height: 150, format: PixelFormat.RGB8 } })),
      });
      await matcher.close();

      // What a copy of the files holds before the erasure: the scan finds the subject there.
      const sealed = await readSealedRows(server, dataDir, subjectId);
      assert.equal(sealed.templates.length, 3);
      assert.ok(sealed.inStatistics, 'the planner\'s statistics hold the subject id too');
      const wrapped = (await (await FileKeyStore.open(join(keyDir, 'data-keys'))).get(sealed.keyId))!;
      assert.ok(wrapped, 'the subject has a data key in the key store');
      const needles: Record<string, Buffer> = {
        'subject id': Buffer.from(subjectId),
        'subject metadata': Buffer.from(branch),
        'wrapped data key': wrapped.wrappedKey,
        'wrapped data key (base64)': Buffer.from(wrapped.wrappedKey.toString('base64')),
        ...Object.fromEntries(sealed.templates.flatMap((t, i) => [[`sealed template ${i}`, t.vector.subarray(0, 48)], [`sealed crop ${i}`, t.crop.subarray(4000, 4048)]])),
        ...Object.fromEntries(faces.flatMap((f, i) => [[`template ${i}`, Buffer.from(encodeEmbedding(f).subarray(0, 48))], [`crop ${i}`, Buffer.from(crops[i]!.subarray(4000, 4048))]])),
      };
      const before = await findInFiles(scanned, needles);
      for (const what of ['subject id', 'subject metadata', 'wrapped data key (base64)', 'sealed template 0']) {
        assert.ok(before.some((hit) => hit.endsWith(`: ${what}`)), `before the erasure the files hold the ${what} (the scan works)`);
      }
      assert.ok(!before.some((hit) => /: (template|crop) \d/.test(hit)), `no file ever holds a plaintext template or crop: ${before.join(', ')}`);

      matcher = await startInProcessMatcher(env);
      const { receipt } = await matcher.compliance.eraseSubject({ context: officer, subjectId, requestRef: 'DSR-residue', reason: ErasureReason.SUBJECT_REQUEST });
      assert.equal(receipt?.counts.find((c) => c.kind === 'data_key')?.count, 1n);
      await matcher.close();
      // Restarted and stopped again: nothing comes back from the WAL or anywhere else.
      matcher = await startInProcessMatcher(env);
      assert.equal((await matcher.matcher.identify({ context: operator, probe: embedding(face, models.v1), topK: 3 })).searchedTemplates, 1n);
      await matcher.close();
      server?.stop('fast');

      assert.deepEqual(await findInFiles(scanned, needles), [], 'no file left holds any of these');

      // With everything that is left (the master key, every key in the key store), nothing opens.
      const master = new LocalMasterKey(Buffer.from((await readFile(join(keyDir, 'master.key'), 'utf8')).trim(), 'base64'));
      const keyStore = await FileKeyStore.open(join(keyDir, 'data-keys'));
      assert.equal(await keyStore.get(sealed.keyId), undefined);
      const left = await keyStore.keyIds();
      assert.equal(left.length, 1, 'the keeper\'s key');
      for (const keyId of left) {
        const stored = (await keyStore.get(keyId))!;
        const dataKey = await master.unwrap(stored.wrappedKey, stored.masterKeyId, dataKeyContext(stored.tenantId, keyId));
        for (const template of sealed.templates) assert.throws(() => open(dataKey, template.vector, templateContext(template.templateId)));
      }
      // The index snapshot left (saved at each stop, the older ones destroyed) opens with the master
      // key, and holds only the keeper: the erased templates are in no snapshot that can be opened.
      const [snapshot] = (await readdir(indexDir)).filter((name) => name.startsWith('snapshot-'));
      const { gallery_id: galleryId } = JSON.parse(await readFile(join(indexDir, snapshot!, 'manifest.json'), 'utf8')) as { gallery_id: string };
      const loaded = await (await IndexSnapshots.open(indexDir, master, { schema: 'faceprint', galleryId }, createLogger({ service: 'matcher', level: 'silent' }))).loadNewest();
      assert.deepEqual(loaded?.partitions.map((p) => p.partition.size), [1], 'the keeper alone');
      const partition = loaded?.partitions[0]?.partition;
      assert.ok(partition);
      for (const probe of faces) assert.ok((partition.search(probe, 1).scores[0] ?? 0) < 0.9, 'no erased template in it');
    });
  });
}

/** The subject's sealed rows, read from the stopped gallery's database directly. */
async function readSealedRows(server: PrivatePostgres | undefined, dataDir: string, subjectId: string): Promise<SealedRows> {
  type Row = { key_id: string; template_id: string; vector: Buffer; crop: Buffer };
  let rows: Row[];
  let inStatistics: number;
  if (server) {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    await client.query(ANALYZE_SQL);
    rows = (await client.query<Row>(SEALED_ROWS_SQL, [subjectId])).rows;
    inStatistics = (await client.query<{ n: number }>(IN_STATISTICS_SQL, [subjectId])).rows[0]!.n;
    await client.end();
  } else {
    const db = await PGlite.create({ dataDir: join(dataDir, 'pgdata') });
    await db.exec(ANALYZE_SQL);
    rows = (await db.query<{ key_id: string; template_id: string; vector: Uint8Array; crop: Uint8Array }>(SEALED_ROWS_SQL, [subjectId])).rows.map((r) => ({ ...r, vector: Buffer.from(r.vector), crop: Buffer.from(r.crop) }));
    inStatistics = (await db.query<{ n: number }>(IN_STATISTICS_SQL, [subjectId])).rows[0]!.n;
    await db.close();
  }
  return { keyId: rows[0]!.key_id, templates: rows.map((r) => ({ templateId: r.template_id, vector: r.vector, crop: r.crop })), inStatistics: inStatistics > 0 };
}

/** `file: what` for every file under `roots` that holds one of `needles`. */
async function findInFiles(roots: readonly string[], needles: Record<string, Buffer>): Promise<string[]> {
  const hits: string[] = [];
  for (const root of roots) {
    for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      const bytes = await readFile(path);
      for (const [what, needle] of Object.entries(needles)) if (bytes.includes(needle)) hits.push(`${path}: ${what}`);
    }
  }
  return hits;
}
