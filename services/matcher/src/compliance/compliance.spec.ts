/**
 * GDPR compliance of the gallery against real PostgreSQL: erasure with signed receipts and
 * crypto-shredding (no row, index entry, search or pg_dump yields the subject afterwards, on any
 * replica, across a restart), access export, the retention sweeper, consent withdrawal and the
 * compliance role. The embedded gallery runs the same erasure and export checks.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { create, toJsonString } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { decodeEmbedding, encodeEmbedding, verifyErasureReceipt } from '@faceprint/contracts';
import { AuditAction, ConsentSchema, ErasureReason, ErasureReceiptSchema, LegalBasis, PixelFormat, type ErasureReceipt } from '@faceprint/contracts/common';
import { dropSchema, queryTestDatabase, scratchSchemaName, skipUnlessPostgres, TEST_DATABASE_URL, rejectsWith } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { consent, embedding, nearby, randomUnitVector, seededRandom, startInProcessMatcher, testEmbedderRegistry, type InProcessMatcher, type TestModels } from '../test-support.js';
import type { SubjectExportDocument } from './compliance-service.js';
import { dataKeyContext, LocalMasterKey, open, templateContext } from './data-keys.js';
import { FileKeyStore } from './key-store.js';
import { UNUSED_KEY_MIN_AGE_MS } from './unused-key-sweeper.js';

const run = promisify(execFile);
const REPO_ROOT = new URL('../../../../', import.meta.url).pathname;


/** Key files for a matcher: a master key and a receipt-signing key, as an operator would provide them. */
async function writeKeys(dir: string): Promise<{ env: Record<string, string>; masterKey: Buffer; publicKeyFile: string }> {
  const masterKey = randomBytes(32);
  await writeFile(join(dir, 'master.key'), `${masterKey.toString('base64')}\n`, { mode: 0o600 });
  const { privateKey } = generateKeyPairSync('ed25519');
  await writeFile(join(dir, 'signing.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return {
    env: { FACEPRINT_MATCHER_KEY_DIR: dir, FACEPRINT_MATCHER_MASTER_KEY_FILE: join(dir, 'master.key'), FACEPRINT_MATCHER_SIGNING_KEY_FILE: join(dir, 'signing.pem') },
    masterKey,
    publicKeyFile: join(dir, 'signing.pub.pem'),
  };
}

/** The schema's data as `pg_dump` writes it (what a logical backup holds). */
async function pgDump(schema: string): Promise<string> {
  const { stdout } = await run('pg_dump', ['--data-only', `--schema=${schema}`, TEST_DATABASE_URL], { maxBuffer: 1 << 28 });
  return stdout;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const compliance = (tenantId: string) => ({ tenantId, callerId: 'dpo@example.org', roles: ['compliance'], requestId: 'case-call' });
const operator = (tenantId: string) => ({ tenantId, callerId: 'backend', roles: ['operator'] });

describe('erasure, export and consent on PostgreSQL', { skip: await skipUnlessPostgres() }, () => {
  const schema = scratchSchemaName();
  const random = seededRandom(17);
  let models: TestModels;
  let keyDir: string;
  let keys: Awaited<ReturnType<typeof writeKeys>>;
  let env: Record<string, string>;
  let a: InProcessMatcher;
  let b: InProcessMatcher;
  let requests = 0;
  const enroll = (on: InProcessMatcher, tenantId: string, subjectId: string, faces: Float32Array[], requestId = `r${++requests}`) =>
    on.matcher.enrollTemplates({ context: operator(tenantId), requestId, subjectId, subjectMetadata: { branch: 'north' }, consent: consent(), templates: faces.map((f) => ({ embedding: embedding(f, models.v1), quality: 0.8 })) });
  const identify = (on: InProcessMatcher, tenantId: string, face: Float32Array) => on.matcher.identify({ context: operator(tenantId), probe: embedding(face, models.v1), topK: 3 });

  before(async () => {
    models = await testEmbedderRegistry();
    keyDir = await mkdtemp(join(tmpdir(), 'faceprint-matcher-keys-'));
    keys = await writeKeys(keyDir);
    env = { FACEPRINT_DATABASE_URL: TEST_DATABASE_URL, FACEPRINT_DATABASE_SCHEMA: schema, FACEPRINT_MODEL_REGISTRY: models.root, FACEPRINT_MATCHER_SYNC_INTERVAL_MS: '5000', ...keys.env };
    a = await startInProcessMatcher(env);
    b = await startInProcessMatcher(env);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await dropSchema(schema);
    await rm(models.root, { recursive: true, force: true });
    await rm(keyDir, { recursive: true, force: true });
  });

  it('stores template vectors sealed: neither the table nor a pg_dump holds the plaintext', async () => {
    const face = randomUnitVector(random);
    await enroll(a, 'sealed', 'sam', [face]);
    const [row] = await queryTestDatabase<{ vector: Buffer; sealed: boolean }>(`SELECT vector, sealed FROM ${schema}.templates`);
    assert.equal(row?.sealed, true);
    assert.equal(row.vector.length, 128 * 4 + 28, 'nonce + ciphertext + tag');
    assert.ok(!row.vector.includes(Buffer.from(encodeEmbedding(face).subarray(0, 64))), 'the stored bytes are not the vector');
    assert.ok(!(await pgDump(schema)).includes(hex(encodeEmbedding(face)).slice(0, 128)), 'the dump holds no plaintext vector');
  });

  it('keeps an aligned crop only under a consent that allows it, sealed, and erases it with the subject', async () => {
    const face = randomUnitVector(random);
    const crop = { pixels: Uint8Array.from({ length: 150 * 150 * 3 }, () => Math.floor(random() * 256)), width: 150, height: 150, format: PixelFormat.RGB8 };
    const request = (requestId: string, retain: boolean) => ({
      context: operator('crops'),
      requestId,
      subjectId: 'cora',
      consent: { ...consent(), retainAlignedCrops: retain },
      templates: [{ embedding: embedding(face, models.v1), quality: 0.8, alignedCrop: crop }],
    });
    await rejectsWith(a.matcher.enrollTemplates(request('c0', false)), status.INVALID_ARGUMENT, /templates\[0\]\.aligned_crop: the consent does not allow keeping aligned crops/);
    await rejectsWith(a.matcher.enrollTemplates({ ...request('c1', true), templates: [{ embedding: embedding(face, models.v1), quality: 0.8, alignedCrop: { ...crop, width: 149 } }] }), status.INVALID_ARGUMENT, /aligned_crop.pixels: must be width\*height\*3/);
    const enrolled = await a.matcher.enrollTemplates(request('c2', true));
    assert.equal(enrolled.templates[0]?.alignedCropRetained, true);
    const [row] = await queryTestDatabase<{ crop: Buffer }>(`SELECT crop FROM ${schema}.templates WHERE template_id = $1`, [enrolled.templates[0].templateId]);
    assert.equal(row?.crop.length, 150 * 150 * 3 + 28, 'nonce + ciphertext + tag');
    assert.ok(!(await pgDump(schema)).includes(hex(crop.pixels.subarray(1000, 1064))), 'the dump holds no plaintext crop');
    const document = JSON.parse(new TextDecoder().decode((await a.compliance.exportSubject({ context: compliance('crops'), subjectId: 'cora', requestRef: 'SAR-crop' })).document)) as SubjectExportDocument;
    assert.deepEqual([document.consents[0]?.retain_aligned_crops, document.templates[0]?.aligned_crop_retained, document.templates[0]?.aligned_crop], [true, true, undefined]);
    // Asked for the biometric data itself, the access export holds the crop too (Art. 15: a copy of the data held).
    const full = JSON.parse(new TextDecoder().decode((await a.compliance.exportSubject({ context: compliance('crops'), subjectId: 'cora', requestRef: 'SAR-crop-2', includeVectors: true })).document)) as SubjectExportDocument;
    assert.deepEqual(Buffer.from(full.templates[0]!.aligned_crop!.pixels_base64, 'base64'), Buffer.from(crop.pixels));
    // A later enrolment under a consent without retain_aligned_crops drops the crops kept before.
    await a.matcher.enrollTemplates({ ...request('c3', false), templates: [{ embedding: embedding(face, models.v1), quality: 0.8 }] });
    const held = await a.matcher.getSubject({ context: operator('crops'), subjectId: 'cora' });
    assert.deepEqual(held.templates.map((t) => t.alignedCropRetained), [false, false]);
    await a.compliance.eraseSubject({ context: compliance('crops'), subjectId: 'cora', requestRef: 'DSR-crop', reason: ErasureReason.SUBJECT_REQUEST });
    assert.deepEqual(await queryTestDatabase(`SELECT 1 FROM ${schema}.templates WHERE crop IS NOT NULL AND tenant_id = 'crops'`), []);
  });

  it('erases a subject everywhere, with a signed receipt, while searches run on another replica', async () => {
    const face = randomUnitVector(random);
    const faces = [face, nearby(face, random, 0.03), nearby(face, random, 0.03)];
    const enrolled = await enroll(a, 'bank', 'erin', faces, 'erin-enrol');
    for (let i = 0; i < 5; i++) await enroll(a, 'bank', `keep-${i}`, [randomUnitVector(random)]);
    await a.matcher.verify({ context: operator('bank'), subjectId: 'erin', probe: embedding(face, models.v1) });
    while ((await identify(b, 'bank', face)).candidates[0]?.subjectId !== 'erin') await sleep(5);
    const keyId = (await queryTestDatabase<{ data_key_id: string }>(`SELECT data_key_id FROM ${schema}.subjects WHERE subject_id = 'erin'`))[0]!.data_key_id;
    const dumpBefore = await pgDump(schema);
    const [sealedRow] = await queryTestDatabase<{ template_id: string; vector: Buffer }>(`SELECT template_id, vector FROM ${schema}.templates WHERE template_id = $1`, [enrolled.templates[0]!.templateId]);
    const keyStore = await FileKeyStore.open(join(keyDir, 'data-keys'));
    const wrapped = (await keyStore.get(keyId))!;
    assert.ok(dumpBefore.includes(hex(sealedRow!.vector)), 'a backup taken before holds the sealed template');
    assert.ok(!dumpBefore.includes(hex(wrapped.wrappedKey)) && !dumpBefore.includes(wrapped.wrappedKey.toString('base64')), 'but never its key: that is in the key store, apart from the database');

    // Searches on replica B while A erases: none started after the acknowledgement may return erin.
    let acknowledgedAt = Infinity;
    let stop = false;
    const violations: string[] = [];
    const searches = (async () => {
      while (!stop) {
        const started = Date.now();
        const result = await identify(b, 'bank', face);
        if (started > acknowledgedAt && result.candidates.some((c) => c.subjectId === 'erin')) violations.push(`a search started ${started - acknowledgedAt} ms after the ack returned erin`);
      }
    })();
    await sleep(50);
    const erased = await a.compliance.eraseSubject({ context: compliance('bank'), subjectId: 'erin', requestRef: 'DSR-2026-0042', reason: ErasureReason.SUBJECT_REQUEST, note: 'by e-mail' });
    acknowledgedAt = Date.now();
    await sleep(300);
    stop = true;
    await searches;
    assert.deepEqual(violations, []);

    // The receipt: what was erased, signed, verifiable offline.
    const receipt = erased.receipt!;
    assert.equal(erased.replayed, false);
    assert.equal(receipt.subjectId, 'erin');
    assert.equal(receipt.requestRef, 'DSR-2026-0042');
    assert.deepEqual(Object.fromEntries(receipt.counts.map((c) => [c.kind, Number(c.count)])), { audit_link: 1, consent: 1, data_key: 1, enroll_response: 1, index_entry: 3, subject: 1, template: 3 });
    const publicKey = await readFile(keys.publicKeyFile, 'utf8');
    assert.equal(verifyErasureReceipt(receipt, publicKey).valid, true);
    const forged = create(ErasureReceiptSchema, { ...receipt, subjectId: 'someone-else' });
    assert.equal(verifyErasureReceipt(forged, publicKey).valid, false, 'a field that disagrees with the signed payload');
    const otherKey = generateKeyPairSync('ed25519').publicKey;
    assert.equal(verifyErasureReceipt(receipt, otherKey).valid, false, 'another key');
    await verifyWithCli(receipt, keys.publicKeyFile);

    // Idempotent: a repeat returns the first receipt.
    const again = await b.compliance.eraseSubject({ context: compliance('bank'), subjectId: 'erin', requestRef: 'DSR-2026-0042-retry', reason: ErasureReason.SUBJECT_REQUEST });
    assert.equal(again.replayed, true);
    assert.deepEqual(again.receipt?.signedPayload, receipt.signedPayload);

    // No row names erin's templates, consents, responses, key or pseudonym; her events stay, unlinked.
    const remaining = await queryTestDatabase<{ n: number }>(
      `SELECT (SELECT count(*) FROM ${schema}.subjects WHERE subject_id = 'erin')
            + (SELECT count(*) FROM ${schema}.templates WHERE template_id = ANY($1::uuid[]))
            + (SELECT count(*) FROM ${schema}.key_destructions WHERE key_id = $2)
            + (SELECT count(*) FROM ${schema}.subject_pseudonyms WHERE subject_id = 'erin')
            + (SELECT count(*) FROM ${schema}.enroll_requests WHERE request_id = 'erin-enrol' AND response IS NOT NULL) AS n`,
      [enrolled.templates.map((t) => t.templateId), keyId],
    );
    assert.equal(Number(remaining[0]!.n), 0);
    const events = await a.compliance.listAuditEvents({ context: compliance('bank'), actions: [AuditAction.ENROLL, AuditAction.VERIFY, AuditAction.ERASE] });
    assert.ok(events.events.every((e) => e.subjectId !== 'erin'), 'no event names erin any more');
    const erasure = events.events.find((e) => e.action === AuditAction.ERASE && e.details.receipt_id === receipt.receiptId && !e.details.replayed);
    assert.match(erasure?.subjectId ?? '', /^pseudonym:/, 'the erasure event stays, pseudonymised');
    assert.deepEqual(
      events.events.filter((e) => e.subjectId === erasure!.subjectId).map((e) => AuditAction[e.action]).sort(),
      ['ENROLL', 'ERASE', 'VERIFY'],
      'her earlier events stay under the same pseudonym, no longer tied to her id',
    );

    // Receipts, like audit events, are append-only.
    for (const statement of [`UPDATE ${schema}.erasure_log SET reason = 1`, `DELETE FROM ${schema}.erasure_log`, `TRUNCATE ${schema}.erasure_log`]) {
      await assert.rejects(queryTestDatabase(statement), /erasure_log is append-only/, statement);
    }
    const dumpLines = (await pgDump(schema)).split('\n').filter((line) => line.includes('erin'));
    assert.deepEqual(dumpLines, [], 'no row names her: the erasure log and her erased request ids are keyed digests');

    // Enrolling again under the erased request id does not bring erin back.
    await rejectsWith(enroll(a, 'bank', 'erin', faces, 'erin-enrol'), status.FAILED_PRECONDITION, /has since been erased/);

    // No replica's index holds her templates (8 enrolled, 3 erased: 5 left), no search or read returns her.
    for (const replica of [a, b]) {
      let result = await identify(replica, 'bank', face);
      for (let waited = 0; result.searchedTemplates !== 5n && waited < 5_000; waited += 20) {
        await sleep(20);
        result = await identify(replica, 'bank', face);
      }
      assert.equal(result.searchedTemplates, 5n, 'the index evicted the erased templates');
      assert.ok(result.candidates.every((c) => c.subjectId !== 'erin'));
      await rejectsWith(replica.matcher.getSubject({ context: operator('bank'), subjectId: 'erin' }), status.NOT_FOUND, /erin/);
      await rejectsWith(replica.matcher.verify({ context: operator('bank'), subjectId: 'erin', probe: embedding(face, models.v1) }), status.NOT_FOUND, /erin/);
    }

    // A backup taken after holds no template of hers; one taken before cannot be opened with any key left.
    const dumpAfter = await pgDump(schema);
    assert.ok(!dumpAfter.includes(hex(sealedRow!.vector)));
    assert.ok(!dumpAfter.includes(keyId));
    assert.equal(await keyStore.get(keyId), undefined, 'her key is destroyed');
    const master = new LocalMasterKey(keys.masterKey);
    const keysLeft = (await Promise.all((await keyStore.keyIds()).map(async (id) => ({ id, key: (await keyStore.get(id))! })))).filter((k) => k.key.tenantId === 'bank');
    assert.equal(keysLeft.length, 5, 'one key per remaining subject');
    for (const k of keysLeft) {
      const dataKey = await master.unwrap(k.key.wrappedKey, k.key.masterKeyId, dataKeyContext(k.key.tenantId, k.id));
      assert.throws(() => open(dataKey, sealedRow!.vector, templateContext(sealedRow!.template_id)), 'no remaining key opens the erased template');
    }

    // After a restart of the whole mesh of matchers, nothing comes back.
    await a.close();
    await b.close();
    a = await startInProcessMatcher(env);
    b = await startInProcessMatcher(env);
    const afterRestart = await identify(a, 'bank', face);
    assert.equal(afterRestart.searchedTemplates, 5n);
    assert.ok(afterRestart.candidates.every((c) => c.subjectId !== 'erin'));
    await rejectsWith(a.compliance.exportSubject({ context: compliance('bank'), subjectId: 'erin', requestRef: 'SAR-1' }), status.NOT_FOUND, /erin/);
    assert.deepEqual((await a.compliance.eraseSubject({ context: compliance('bank'), subjectId: 'erin', requestRef: 'again', reason: ErasureReason.OPERATOR })).receipt?.signedPayload, receipt.signedPayload);
  });

  it('seals templates stored before encryption at rest when the matcher starts', async () => {
    const face = randomUnitVector(random);
    const enrolled = await enroll(a, 'legacy', 'lee', [face]);
    // As a gallery from before migration 0003 would hold it: a plaintext vector, no data key.
    await queryTestDatabase(`UPDATE ${schema}.templates SET vector = $2, sealed = false WHERE template_id = $1`, [enrolled.templates[0]!.templateId, Buffer.from(encodeEmbedding(face))]);
    await queryTestDatabase(`WITH s AS (UPDATE ${schema}.subjects SET data_key_id = NULL WHERE subject_id = 'lee' AND tenant_id = 'legacy' RETURNING 1) SELECT 1`);
    await a.close();
    a = await startInProcessMatcher(env);
    const [row] = await queryTestDatabase<{ sealed: boolean }>(`SELECT sealed FROM ${schema}.templates WHERE template_id = $1`, [enrolled.templates[0]!.templateId]);
    assert.equal(row?.sealed, true);
    assert.equal((await identify(a, 'legacy', face)).candidates[0]?.subjectId, 'lee', 'still found after sealing');
    assert.equal((await a.matcher.verify({ context: operator('legacy'), subjectId: 'lee', probe: embedding(face, models.v1) })).decision?.isMatch, true);
  });

  it('erases subjects whose retention has ended, through the same erasure path', async () => {
    const sweeping = await startInProcessMatcher({ ...env, FACEPRINT_MATCHER_RETENTION_SWEEP_MS: '200' });
    try {
      const shortConsent = create(ConsentSchema, { ...consent(), givenAt: timestampFromDate(new Date(Date.now() - 86_400_000 + 1_500)), retentionDays: 1 });
      await sweeping.matcher.enrollTemplates({ context: operator('retail'), requestId: 'short-1', subjectId: 'rita', consent: shortConsent, templates: [{ embedding: embedding(randomUnitVector(random), models.v1) }] });
      await enroll(sweeping, 'retail', 'ron', [randomUnitVector(random)]);
      const started = Date.now();
      for (;;) {
        const found = await sweeping.matcher.getSubject({ context: operator('retail'), subjectId: 'rita' }).then(() => true, () => false);
        if (!found) break;
        assert.ok(Date.now() - started < 15_000, 'the sweeper erased rita in time');
        await sleep(100);
      }
      const replay = await sweeping.compliance.eraseSubject({ context: compliance('retail'), subjectId: 'rita', requestRef: 'check', reason: ErasureReason.OPERATOR });
      assert.equal(replay.replayed, true);
      assert.equal(replay.receipt?.reason, ErasureReason.RETENTION_EXPIRED);
      assert.match(replay.receipt?.requestRef ?? '', /^retention-expired:/);
      const events = await sweeping.compliance.listAuditEvents({ context: compliance('retail'), actions: [AuditAction.ERASE] });
      assert.ok(events.events.some((e) => e.actor === 'faceprint-matcher/retention-sweeper' && e.details.reason === 'RETENTION_EXPIRED'));
      assert.ok(await sweeping.matcher.getSubject({ context: operator('retail'), subjectId: 'ron' }), 'a subject within retention stays');
    } finally {
      await sweeping.close();
    }
  });

  it('destroys data keys no subject uses once they are an hour old, and no other key', async () => {
    const store = await FileKeyStore.open(join(keyDir, 'data-keys'));
    const held = new Set(await store.keyIds());
    const face = randomUnitVector(random);
    await enroll(a, 'unused', 'uma', [face]);
    const [umasKey] = (await store.keyIds()).filter((id) => !held.has(id));
    // As a failed enrolment leaves them: stored, never referred to. One an hour old, one just made.
    const [stale, fresh] = [randomUUID(), randomUUID()];
    for (const id of [stale, fresh]) await store.put(id, { tenantId: 'unused', wrappedKey: randomBytes(60), masterKeyId: 'test' });
    const anHourAgo = new Date(Date.now() - UNUSED_KEY_MIN_AGE_MS - 60_000);
    for (const id of [stale, umasKey!]) await utimes(join(store.location, id.slice(0, 2), `${id}.key`), anHourAgo, anHourAgo);

    const sweeping = await startInProcessMatcher({ ...env, FACEPRINT_MATCHER_UNUSED_KEY_SWEEP_MS: '200' });
    try {
      const started = Date.now();
      while ((await store.keyIds()).includes(stale)) {
        assert.ok(Date.now() - started < 15_000, 'the unused key was destroyed in time');
        await sleep(100);
      }
      const left = await store.keyIds();
      assert.ok(left.includes(umasKey!), "a subject's key stays, however old");
      assert.ok(left.includes(fresh), 'a key younger than an hour stays: its enrolment may still be in flight');
      assert.equal((await sweeping.matcher.verify({ context: operator('unused'), subjectId: 'uma', probe: embedding(face, models.v1) })).decision?.isMatch, true);
    } finally {
      await sweeping.close();
    }
  });
});

for (const backend of ['PostgreSQL', 'embedded PGlite'] as const) {
  describe(`access export, roles and consent withdrawal on ${backend}`, { skip: backend === 'PostgreSQL' ? await skipUnlessPostgres() : false }, () => {
    const random = seededRandom(23);
    let models: TestModels;
    let dir: string;
    let m: InProcessMatcher;
    let env: Record<string, string>;
    const schema = scratchSchemaName();

    before(async () => {
      models = await testEmbedderRegistry();
      dir = await mkdtemp(join(tmpdir(), 'faceprint-compliance-'));
      const where: Record<string, string> = backend === 'PostgreSQL' ? { FACEPRINT_DATABASE_URL: TEST_DATABASE_URL, FACEPRINT_DATABASE_SCHEMA: schema } : {};
      // The default key paths: generated beside the data directory (never in it) on first start.
      env = { ...where, FACEPRINT_MATCHER_DATA_DIR: dir, FACEPRINT_MODEL_REGISTRY: models.root };
      m = await startInProcessMatcher(env);
    });
    after(async () => {
      await m?.close();
      if (backend === 'PostgreSQL') await dropSchema(schema);
      await rm(models.root, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
      await rm(`${dir}-keys`, { recursive: true, force: true });
    });

    it('exports everything held about a subject as one JSON document, vectors only when asked', async () => {
      const face = randomUnitVector(random);
      await m.matcher.enrollTemplates({ context: operator('shop'), requestId: 'x1', subjectId: 'xena', subjectMetadata: { tier: 'gold' }, consent: consent('payment_verification'), templates: [{ embedding: embedding(face, models.v1), quality: 0.7 }] });
      const second = nearby(face, random, 0.02);
      await m.matcher.enrollTemplates({ context: operator('shop'), requestId: 'x2', subjectId: 'xena', subjectMetadata: { tier: 'gold' }, consent: consent('payment_verification'), templates: [{ embedding: embedding(second, models.v1), quality: 0.9 }] });
      await m.matcher.verify({ context: operator('shop'), subjectId: 'xena', probe: embedding(face, models.v1) });

      const plain = JSON.parse(new TextDecoder().decode((await m.compliance.exportSubject({ context: compliance('shop'), subjectId: 'xena', requestRef: 'SAR-7' })).document)) as SubjectExportDocument;
      assert.equal(plain.type, 'faceprint.subject_export.v1');
      assert.equal(plain.subject_id, 'xena');
      assert.deepEqual(plain.subject.metadata, { tier: 'gold' });
      assert.equal(plain.consents.length, 2);
      assert.equal(plain.consents[0]?.legal_basis, LegalBasis[LegalBasis.EXPLICIT_CONSENT]);
      assert.equal(plain.consents[0]?.purpose, 'payment_verification');
      assert.equal(plain.templates.length, 2);
      assert.ok(plain.templates.every((t) => !('vector' in t)), 'no vectors unless asked');
      assert.deepEqual(plain.audit_events.map((e) => e.action).sort(), ['ENROLL', 'ENROLL', 'VERIFY']);

      const full = JSON.parse(new TextDecoder().decode((await m.compliance.exportSubject({ context: compliance('shop'), subjectId: 'xena', requestRef: 'SAR-7', includeVectors: true })).document)) as SubjectExportDocument;
      assert.deepEqual(full.templates.map((t) => t.vector), [Array.from(face), Array.from(second)], 'the vectors, opened, exactly as enrolled');
      const exports = await m.compliance.listAuditEvents({ context: compliance('shop'), subjectId: 'xena', actions: [AuditAction.EXPORT] });
      assert.equal(exports.events.length, 2, 'each export is audited');
      assert.equal(exports.events[0]?.details.request_ref, 'SAR-7');
    });

    it('hands model training only the templates of subjects who consented to model improvement, under labels, audited', async () => {
      const trainer = (tenantId: string) => ({ tenantId, callerId: 'trainer', roles: ['model_training'], requestId: 'job-1' });
      const faces = [randomUnitVector(random), randomUnitVector(random), randomUnitVector(random), randomUnitVector(random)];
      const enrollAs = (subjectId: string, purpose: string, templates: Float32Array[]) =>
        m.matcher.enrollTemplates({ context: operator('lab'), requestId: `t-${subjectId}-${purpose}`, subjectId, consent: consent(purpose), templates: templates.map((f) => ({ embedding: embedding(f, models.v1), quality: 0.8 })) });
      await enrollAs('yara', 'model_improvement', [faces[0]!, faces[1]!]);
      await enrollAs('noah', 'access_control', [faces[2]!]);
      await enrollAs('gone', 'model_improvement', [faces[3]!]);
      await m.compliance.eraseSubject({ context: compliance('lab'), subjectId: 'gone', requestRef: 'DSR-7', reason: ErasureReason.CONSENT_WITHDRAWN });
      const exportOnce = async () => {
        const rows: { label: string; vector: Float32Array }[] = [];
        for await (const t of m.compliance.exportTrainingTemplates({ context: trainer('lab'), model: models.v1, requestRef: 'fine-tune-42' })) rows.push({ label: t.label, vector: decodeEmbedding(t.vector, t.dim) });
        return rows;
      };
      const first = await exportOnce();
      assert.equal(first.length, 2, 'only yara consented (noah gave another purpose; gone is erased)');
      assert.equal(new Set(first.map((r) => r.label)).size, 1, 'one label for one subject');
      assert.ok(!first.some((r) => r.label.includes('yara')), 'the label is not the subject id');
      for (const [i, row] of first.entries()) assert.ok(Math.abs(row.vector.reduce((sum, v, k) => sum + v * faces[i]![k]!, 0) - 1) < 1e-5, 'the enrolled vectors, opened');
      const second = await exportOnce();
      assert.notEqual(second[0]!.label, first[0]!.label, 'labels do not link two exports');

      // Each export recorded yara's use, and nobody else's; another model version has nothing to give.
      const events = await m.compliance.listAuditEvents({ context: compliance('lab'), actions: [AuditAction.TRAINING_EXPORT] });
      assert.deepEqual(events.events.map((e) => [e.subjectId, e.details['request_ref'], e.details['template_count'], e.actor]), [['yara', 'fine-tune-42', '2', 'trainer'], ['yara', 'fine-tune-42', '2', 'trainer']]);
      let none = 0;
      for await (const _ of m.compliance.exportTrainingTemplates({ context: trainer('lab'), model: { ...models.v1, version: 99 }, requestRef: 'other' })) none++;
      assert.equal(none, 0);

      const drain = async (request: Parameters<typeof m.compliance.exportTrainingTemplates>[0]) => {
        for await (const _ of m.compliance.exportTrainingTemplates(request)) void _;
      };
      await rejectsWith(drain({ context: compliance('lab'), model: models.v1, requestRef: 'x' }), status.PERMISSION_DENIED, /needs the "model_training" role/);
      await rejectsWith(drain({ context: trainer('lab'), requestRef: '' }), status.INVALID_ARGUMENT, /model.name: is required.*request_ref/);
    });

    it('lets only the compliance role erase, export and read the audit trail, and refuses bad erasure requests', async () => {
      await m.matcher.enrollTemplates({ context: operator('shop'), requestId: 'y1', subjectId: 'yuri', consent: consent(), templates: [{ embedding: embedding(randomUnitVector(random), models.v1) }] });
      const erase = { subjectId: 'yuri', requestRef: 'DSR-1', reason: ErasureReason.SUBJECT_REQUEST };
      await rejectsWith(m.compliance.eraseSubject({ context: operator('shop'), ...erase }), status.PERMISSION_DENIED, /"compliance" role/);
      await rejectsWith(m.compliance.exportSubject({ context: operator('shop'), subjectId: 'yuri', requestRef: 'SAR-1' }), status.PERMISSION_DENIED, /"compliance" role/);
      await rejectsWith(m.compliance.listAuditEvents({ context: operator('shop') }), status.PERMISSION_DENIED, /"compliance" role/);
      // Never "all": an erasure names its subject, its request and its reason.
      await rejectsWith(m.compliance.eraseSubject({ context: compliance('shop'), ...erase, subjectId: '' }), status.INVALID_ARGUMENT, /subject_id: is required/);
      await rejectsWith(m.compliance.eraseSubject({ context: compliance('shop'), ...erase, requestRef: '' }), status.INVALID_ARGUMENT, /request_ref: is required/);
      await rejectsWith(m.compliance.eraseSubject({ context: compliance('shop'), ...erase, reason: ErasureReason.UNSPECIFIED }), status.INVALID_ARGUMENT, /reason: is required/);
      await rejectsWith(m.compliance.eraseSubject({ context: compliance('shop'), ...erase, subjectId: 'nobody' }), status.NOT_FOUND, /nobody/);
      await rejectsWith(m.compliance.exportSubject({ context: compliance('shop'), subjectId: 'yuri', requestRef: '' }), status.INVALID_ARGUMENT, /request_ref: is required/);
      assert.ok(await m.matcher.getSubject({ context: operator('shop'), subjectId: 'yuri' }), 'nothing was erased by the refused calls');
    });

    it('erases a subject who withdraws consent, and the receipt verifies with the generated key', async () => {
      await m.matcher.enrollTemplates({ context: operator('shop'), requestId: 'w1', subjectId: 'wanda', consent: consent(), templates: [{ embedding: embedding(randomUnitVector(random), models.v1) }] });
      const { receipt } = await m.compliance.eraseSubject({ context: compliance('shop'), subjectId: 'wanda', requestRef: 'app-withdrawal-991', reason: ErasureReason.CONSENT_WITHDRAWN });
      assert.equal(receipt?.reason, ErasureReason.CONSENT_WITHDRAWN);
      const publicKey = await readFile(join(`${dir}-keys`, 'receipt-signing.pub.pem'), 'utf8');
      assert.equal(verifyErasureReceipt(receipt, publicKey).valid, true);
      await rejectsWith(m.matcher.getSubject({ context: operator('shop'), subjectId: 'wanda' }), status.NOT_FOUND, /wanda/);
      await verifyWithCli(receipt, join(`${dir}-keys`, 'receipt-signing.pub.pem'));
    });

    it('rotates the signing key: what the old key signed stays verifiable among the keys GetPublicKeys hands out', async () => {
      const erase = async (subjectId: string) => {
        await m.matcher.enrollTemplates({ context: operator('shop'), requestId: `rot-${subjectId}`, subjectId, consent: consent(), templates: [{ embedding: embedding(randomUnitVector(random), models.v1) }] });
        return (await m.compliance.eraseSubject({ context: compliance('shop'), subjectId, requestRef: `rot-${subjectId}`, reason: ErasureReason.SUBJECT_REQUEST })).receipt!;
      };
      const before = await erase('rosa');
      assert.deepEqual((await m.compliance.getPublicKeys({})).keys.map((k) => [k.keyId, k.active]), [[before.signingKeyId, true]]);

      const cli = join(REPO_ROOT, 'node_modules/.bin/faceprint');
      const rotated = JSON.parse((await run(cli, ['receipt', 'rotate-key', '--key-file', join(`${dir}-keys`, 'receipt-signing.pem'), '--json'], { cwd: REPO_ROOT })).stdout) as { active: string; retired: string };
      assert.equal(rotated.retired, before.signingKeyId);
      await m.close();
      m = await startInProcessMatcher(env); // the matcher reads its keys at start

      const after = await erase('ruth');
      assert.equal(after.signingKeyId, rotated.active);
      const { keys } = await m.compliance.getPublicKeys({});
      assert.deepEqual(keys.map((k) => [k.keyId, k.active]), [[rotated.active, true], [before.signingKeyId, false]]);
      const pems = keys.map((k) => k.publicKeyPem);
      assert.equal(verifyErasureReceipt(before, pems).valid, true, 'the old receipt, by its key id among both');
      assert.equal(verifyErasureReceipt(after, pems).valid, true);
      const withoutOld = verifyErasureReceipt(before, [pems[0]!, generateKeyPairSync('ed25519').publicKey]);
      assert.deepEqual(withoutOld.valid ? [] : withoutOld.problems, [`signed by ${before.signingKeyId}, which is none of the 2 public keys given`]);
      // The command line takes the keys as one PEM file, as `faceprint receipt keys` writes it.
      const bundle = join(dir, 'keys.pem');
      await writeFile(bundle, pems.join('\n'));
      await verifyWithCli(before, bundle);
    });
  });
}

/** Runs `faceprint receipt verify` on the receipt (valid, exit 0) and on a forgery of it (exit 1). */
async function verifyWithCli(receipt: ErasureReceipt, publicKeyFile: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'faceprint-receipt-'));
  try {
    const genuine = join(dir, 'receipt.json');
    const forged = join(dir, 'forged.json');
    await writeFile(genuine, toJsonString(ErasureReceiptSchema, receipt));
    await writeFile(forged, toJsonString(ErasureReceiptSchema, create(ErasureReceiptSchema, { ...receipt, requestRef: 'not-the-request' })));
    const cli = join(REPO_ROOT, 'node_modules/.bin/faceprint');
    const ok = await run(cli, ['receipt', 'verify', genuine, '--public-key', publicKeyFile, '--json'], { cwd: REPO_ROOT });
    const verdict = JSON.parse(ok.stdout) as { valid: boolean; receipt: { subject_id: string } };
    assert.equal(verdict.valid, true);
    assert.equal(verdict.receipt.subject_id, receipt.subjectId);
    await assert.rejects(run(cli, ['receipt', 'verify', forged, '--public-key', publicKeyFile]), (error: { code?: number; stdout?: string }) => {
      assert.equal(error.code, 1);
      assert.match(error.stdout ?? '', /NOT valid:[\s\S]*request_ref/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
