/**
 * The matcher against both of its databases: real PostgreSQL (a scratch schema in the CI
 * server's `test` database) and the embedded PGlite, through a real gRPC server on loopback.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dropSchema, queryTestDatabase, scratchSchemaName, skipUnlessPostgres, TEST_DATABASE_URL, rejectsWith } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { AuditAction, AuditOutcome, type ModelRef } from '@faceprint/contracts/common';
import { consent, embedding, nearby, randomUnitVector, seededRandom, startInProcessMatcher, testEmbedderRegistry, testThresholdFor, TEST_THRESHOLDS, type InProcessMatcher, type TestModels } from './test-support.js';
import { readMigrations } from './database/migrations.js';
import { ModelRegistry } from '@faceprint/model-registry';


const postgresSkip = await skipUnlessPostgres();

/** One database the matcher can run on: how to point a matcher at a fresh gallery on it. */
interface Backend {
  readonly name: string;
  readonly skip: false | string;
  /** A fresh gallery's settings; `drop` removes it. */
  fresh(): Promise<{ env: Record<string, string>; drop: () => Promise<void> }>;
}

const BACKENDS: Backend[] = [
  {
    name: 'PostgreSQL',
    skip: postgresSkip,
    fresh: async () => {
      const schema = scratchSchemaName();
      return { env: { FACEPRINT_DATABASE_URL: TEST_DATABASE_URL, FACEPRINT_DATABASE_SCHEMA: schema }, drop: () => dropSchema(schema) };
    },
  },
  {
    name: 'embedded PGlite',
    skip: false,
    fresh: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'faceprint-gallery-test-'));
      return { env: { FACEPRINT_MATCHER_DATA_DIR: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
    },
  },
];

for (const backend of BACKENDS) {
  describe(`matcher on ${backend.name}`, { skip: backend.skip }, () => {
    let models: TestModels;
    let gallery: { env: Record<string, string>; drop: () => Promise<void> };
    let m: InProcessMatcher;
    const random = seededRandom(42);
    const env = () => ({ ...gallery.env, FACEPRINT_MODEL_REGISTRY: models.root, FACEPRINT_MATCHER_SYNC_INTERVAL_MS: '100' });
    const ctx = (tenantId: string, extra: object = {}) => ({ tenantId, callerId: 'test', roles: ['operator'], ...extra });
    let requests = 0;
    const given = consent(); // one record, so that a retried request is the same request
    const enroll = (tenantId: string, subjectId: string, vectors: Float32Array[], model: ModelRef = models.v1, requestId = `req-${++requests}`) =>
      m.matcher.enrollTemplates({
        context: ctx(tenantId),
        requestId,
        subjectId,
        subjectMetadata: { source: 'test' },
        consent: given,
        templates: vectors.map((v) => ({ embedding: embedding(v, model), quality: 0.9 })),
      });

    before(async () => {
      models = await testEmbedderRegistry();
      gallery = await backend.fresh();
      m = await startInProcessMatcher(env());
    });
    after(async () => {
      await m?.close();
      await gallery?.drop();
      await rm(models.root, { recursive: true, force: true });
    });

    it('enrols a subject and reads it back with its consent and template metadata, never the vectors', async () => {
      const face = randomUnitVector(random);
      const response = await enroll('acme', 'alice', [face, nearby(face, random, 0.05)]);
      assert.equal(response.replayed, false);
      assert.equal(response.templates.length, 2);
      assert.equal(response.subject?.templateCount, 2);
      assert.equal(response.subject?.consent?.purpose, 'access_control');
      assert.ok(response.subject?.retainUntil, 'retain_until comes from the consent');
      const read = await m.matcher.getSubject({ context: ctx('acme'), subjectId: 'alice' });
      assert.deepEqual(read.templates.map((t) => t.templateId).sort(), response.templates.map((t) => t.templateId).sort());
      assert.deepEqual(read.subject?.metadata, { source: 'test' });
      assert.equal(read.templates[0]?.model?.sha256, models.v1.sha256);
      assert.equal(read.templates[0]?.dim, 128);
      await rejectsWith(m.matcher.getSubject({ context: ctx('acme'), subjectId: 'nobody' }), status.NOT_FOUND, /subject "nobody" not found/);
    });

    it('serves parallel enrolments and identifies, every one acknowledged and found', async () => {
      // 12 enrolments (each a transaction) and 12 identifies at once: on the embedded gallery,
      // several connections onto its one session once mixed their statements up or stalled.
      const faces = Array.from({ length: 12 }, () => randomUnitVector(random));
      const calls = faces.flatMap((face, i) => [
        enroll('parallel', `p${i}`, [face, nearby(face, random, 0.03)]),
        m.matcher.identify({ context: ctx('parallel'), probe: embedding(face, models.v1), topK: 1 }),
      ]);
      const settled = await Promise.allSettled(calls);
      assert.deepEqual(settled.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : [])), []);
      for (const [i, face] of faces.entries()) {
        const top = await m.matcher.identify({ context: ctx('parallel'), probe: embedding(nearby(face, random, 0.03), models.v1), topK: 1 });
        assert.equal(top.candidates[0]?.subjectId, `p${i}`);
      }
    });

    it('flags an enrolment whose templates do not all show one person, with the scores', async () => {
      const face = randomUnitVector(random);
      const same = await enroll('consistent', 'one-person', [face, nearby(face, random, 0.03), nearby(face, random, 0.03)]);
      assert.equal(same.consistency?.flagged, false);
      assert.equal(same.consistency?.templates.length, 3);
      assert.ok(same.consistency.templates.every((t) => t.bestScore > TEST_THRESHOLDS[1e-3]));
      assert.deepEqual([same.consistency?.threshold, same.consistency?.far], [TEST_THRESHOLDS[1e-3], 1e-3], 'the loosest calibrated threshold');
      // Two people enrolled as one subject: each photo agrees with none of the others.
      const mixed = await enroll('consistent', 'two-people', [randomUnitVector(random), randomUnitVector(random)]);
      assert.equal(mixed.consistency?.flagged, true);
      assert.ok(mixed.consistency.templates.every((t) => t.bestScore < TEST_THRESHOLDS[1e-3]), JSON.stringify(mixed.consistency?.templates));
      // Another person's photo added to an existing subject: checked against the earlier templates.
      const added = await enroll('consistent', 'one-person', [randomUnitVector(random)]);
      assert.deepEqual([added.consistency?.flagged, added.consistency?.templates.length], [true, 1]);
      const again = await enroll('consistent', 'one-person', [nearby(face, random, 0.03)]);
      assert.equal(again.consistency?.flagged, false, 'a photo of the same person agrees with the earlier ones');
      // A first enrolment of one photo has nothing to compare with; an uncalibrated model, no threshold.
      assert.deepEqual((await enroll('consistent', 'single', [face])).consistency?.templates, []);
      assert.equal((await enroll('consistent', 'uncalibrated', [face, face], models.uncalibrated)).consistency, undefined);
    });

    it('is idempotent under a request id: a retry replays the first response, a different request with it is refused', async () => {
      const face = randomUnitVector(random);
      const first = await enroll('acme', 'bob', [face], models.v1, 'bob-1');
      const again = await enroll('acme', 'bob', [face], models.v1, 'bob-1');
      assert.equal(again.replayed, true);
      assert.deepEqual(again.templates.map((t) => t.templateId), first.templates.map((t) => t.templateId));
      assert.equal((await m.matcher.getSubject({ context: ctx('acme'), subjectId: 'bob' })).templates.length, 1, 'no second template');
      await rejectsWith(enroll('acme', 'bob', [randomUnitVector(random)], models.v1, 'bob-1'), status.FAILED_PRECONDITION, /was used for a different enrolment/);
      // Concurrent first attempts: one creates, the others replay it.
      const racing = await Promise.all([0, 1, 2, 3].map(() => enroll('acme', 'carol', [face], models.v1, 'carol-1')));
      assert.equal(racing.filter((r) => !r.replayed).length, 1);
      assert.equal(new Set(racing.map((r) => r.templates[0]!.templateId)).size, 1);
    });

    it('verifies 1:1 with the threshold calibrated for the target false-match rate, per compared template', async () => {
      const face = randomUnitVector(random);
      await enroll('acme', 'dave', [face, randomUnitVector(random)]);
      const genuine = await m.matcher.verify({ context: ctx('acme'), subjectId: 'dave', probe: embedding(nearby(face, random, 0.03), models.v1), targetFar: 1e-5 });
      assert.equal(genuine.decision?.isMatch, true);
      assert.ok(genuine.decision.score > 0.8, `genuine score ${genuine.decision.score}`);
      // The best of two templates decides: each is held to the threshold of 1e-5 / 2.
      assert.equal(genuine.decision?.templatesCompared, 2);
      assert.equal(genuine.decision?.threshold.toFixed(3), testThresholdFor(1e-5 / 2).toFixed(3));
      assert.equal(genuine.decision?.targetFar, 1e-5);
      assert.equal(genuine.decision?.model?.version, 1);
      const enrolled = await m.matcher.getSubject({ context: ctx('acme'), subjectId: 'dave' });
      assert.equal(genuine.bestTemplateId, enrolled.templates[0]?.templateId, 'fusion by maximum picks the matching template');

      const impostor = await m.matcher.verify({ context: ctx('acme'), subjectId: 'dave', probe: embedding(randomUnitVector(random), models.v1) });
      assert.equal(impostor.decision?.isMatch, false);
      assert.equal(impostor.decision?.targetFar, 1e-4, "the tenant's default");
      assert.equal(impostor.decision?.threshold.toFixed(3), testThresholdFor(1e-4 / 2).toFixed(3));
      // One template: the threshold of the rate itself.
      await enroll('acme', 'dora', [face]);
      const single = await m.matcher.verify({ context: ctx('acme'), subjectId: 'dora', probe: embedding(face, models.v1) });
      assert.deepEqual([single.decision?.templatesCompared, single.decision?.threshold.toFixed(3)], [1, TEST_THRESHOLDS[1e-4].toFixed(3)]);

      await rejectsWith(m.matcher.verify({ context: ctx('acme'), subjectId: 'dave', probe: embedding(face, models.v1), targetFar: 0.01 }), status.FAILED_PRECONDITION, /no threshold calibrated for a false-match rate of 0.01; calibrated: 0.001, 0.0001, 0.00001|calibrated: 0\.001, 0\.0001, 0?1e-5/);
      await rejectsWith(m.matcher.verify({ context: ctx('acme'), subjectId: 'ghost', probe: embedding(face, models.v1) }), status.NOT_FOUND, /subject "ghost"/);
      await rejectsWith(m.matcher.verify({ context: ctx('acme'), subjectId: 'dave', probe: embedding(face, models.uncalibrated) }), status.FAILED_PRECONDITION, /no calibrated thresholds/);
    });

    it('never compares embeddings of different model versions', async () => {
      const face = randomUnitVector(random);
      await enroll('migrating', 'erin', [face], models.v1);
      await rejectsWith(
        m.matcher.verify({ context: ctx('migrating'), subjectId: 'erin', probe: embedding(face, models.v2) }),
        status.FAILED_PRECONDITION,
        /has no template of test-embedder v2 \(it has test-embedder v1 \(1 template\)\)/,
      );
      await rejectsWith(m.matcher.identify({ context: ctx('migrating'), probe: embedding(face, models.v2) }), status.FAILED_PRECONDITION, /holds no template of test-embedder v2/);
      // During a migration the gallery holds both versions; each probe searches its own.
      await enroll('migrating', 'erin', [face], models.v2);
      const onV2 = await m.matcher.identify({ context: ctx('migrating'), probe: embedding(face, models.v2) });
      assert.equal(onV2.candidates[0]?.decision?.model?.version, 2);
      assert.equal(onV2.searchedTemplates, 1n);
      const onV1 = await m.matcher.verify({ context: ctx('migrating'), subjectId: 'erin', probe: embedding(face, models.v1) });
      assert.equal(onV1.decision?.model?.version, 1);
    });

    it('reports, after a promotion, how many subjects hold no template of the current version', async () => {
      const registry = new ModelRegistry(models.root);
      await enroll('promoting', 'pia', [randomUnitVector(random)], models.v1);
      await enroll('promoting', 'paz', [randomUnitVector(random), randomUnitVector(random)], models.v1);
      await enroll('promoting', 'pim', [randomUnitVector(random)], models.v1);
      await enroll('promoting', 'pim', [randomUnitVector(random)], models.v2);
      const galleryStatus = async () => {
        const r = await m.matcher.getGalleryStatus({ context: ctx('promoting') });
        return { versions: r.versions.map((v) => [v.model?.version, v.subjects, v.templates, v.current]), subjects: r.subjects, behind: r.subjectsNeedingReenrolment };
      };
      await registry.promote('test-embedder', models.v1.version);
      assert.deepEqual(await galleryStatus(), { versions: [[1, 3, 4, true], [2, 1, 1, false]], subjects: 3, behind: 0 });
      await registry.promote('test-embedder', models.v2.version);
      assert.deepEqual(await galleryStatus(), { versions: [[1, 3, 4, false], [2, 1, 1, true]], subjects: 3, behind: 2 }, 'pia and paz have only v1 templates');
      assert.deepEqual((await m.matcher.getGalleryStatus({ context: ctx('nobody-here') })).versions, []);
      await rejectsWith(m.matcher.getGalleryStatus({}), status.INVALID_ARGUMENT, /context/);
    });

    it('identifies 1:N: the enrolled person first, top-k ordered, an empty gallery returns nothing', async () => {
      const people = Array.from({ length: 12 }, () => randomUnitVector(random));
      for (const [i, face] of people.entries()) await enroll('crowd', `person-${i}`, [face, nearby(face, random, 0.08)]);
      for (const [i, face] of people.entries()) {
        const result = await m.matcher.identify({ context: ctx('crowd'), probe: embedding(nearby(face, random, 0.05), models.v1), topK: 3 });
        assert.equal(result.candidates.length, 3);
        assert.equal(result.candidates[0]?.subjectId, `person-${i}`);
        assert.equal(result.candidates[0]?.decision?.isMatch, true);
        assert.equal(result.candidates[1]?.decision?.isMatch, false);
        const scores = result.candidates.map((c) => c.decision!.score);
        assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
        assert.equal(result.searchedTemplates, 24n);
      }
      const empty = await m.matcher.identify({ context: ctx('nobody-home'), probe: embedding(people[0]!, models.v1) });
      assert.deepEqual(empty.candidates, []);
    });

    it('keeps tenants apart: one tenant can neither see nor match another tenant’s subjects', async () => {
      const face = randomUnitVector(random);
      await enroll('tenant-a', 'shared-id', [face]);
      await rejectsWith(m.matcher.getSubject({ context: ctx('tenant-b'), subjectId: 'shared-id' }), status.NOT_FOUND, /not found/);
      await rejectsWith(m.matcher.verify({ context: ctx('tenant-b'), subjectId: 'shared-id', probe: embedding(face, models.v1) }), status.NOT_FOUND, /not found/);
      assert.deepEqual((await m.matcher.identify({ context: ctx('tenant-b'), probe: embedding(face, models.v1) })).candidates, []);
      assert.deepEqual((await m.matcher.listSubjects({ context: ctx('tenant-b') })).subjects, []);
      assert.equal((await m.matcher.identify({ context: ctx('tenant-a'), probe: embedding(face, models.v1) })).candidates[0]?.subjectId, 'shared-id');
    });

    it('pages through subjects in id order, with tokens bound to their tenant', async () => {
      for (const id of ['p5', 'p1', 'p4', 'p2', 'p3', 'p7', 'p6']) await enroll('paging', id, [randomUnitVector(random)]);
      const seen: string[] = [];
      let token = '';
      let pages = 0;
      do {
        const page = await m.matcher.listSubjects({ context: ctx('paging'), pageSize: 3, pageToken: token });
        seen.push(...page.subjects.map((s) => s.subjectId));
        token = page.nextPageToken;
        pages += 1;
        if (pages === 1) {
          await rejectsWith(m.matcher.listSubjects({ context: ctx('acme'), pageSize: 3, pageToken: token }), status.INVALID_ARGUMENT, /page_token: belongs to another tenant or query/);
        }
      } while (token);
      assert.deepEqual(seen, ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
      assert.equal(pages, 3);
      await rejectsWith(m.matcher.listSubjects({ context: ctx('paging'), pageToken: 'not-a-token' }), status.INVALID_ARGUMENT, /page_token: is not a page token/);
      await rejectsWith(m.matcher.listSubjects({ context: ctx('paging'), pageSize: 5000 }), status.INVALID_ARGUMENT, /page_size: must be at most 1000/);
    });

    it('deletes a template idempotently, and identify never returns it once the deletion is acknowledged', async () => {
      const face = randomUnitVector(random);
      const enrolled = await enroll('deleting', 'frank', [face]);
      const templateId = enrolled.templates[0]!.templateId;
      assert.equal((await m.matcher.identify({ context: ctx('deleting'), probe: embedding(face, models.v1) })).candidates.length, 1);
      assert.deepEqual(await m.matcher.deleteTemplate({ context: ctx('deleting'), subjectId: 'frank', templateId }).then((r) => r.deleted), true);
      assert.deepEqual(await m.matcher.deleteTemplate({ context: ctx('deleting'), subjectId: 'frank', templateId }).then((r) => r.deleted), false);
      assert.equal((await m.matcher.identify({ context: ctx('deleting'), probe: embedding(face, models.v1) })).candidates.length, 0);
      await rejectsWith(m.matcher.deleteTemplate({ context: ctx('deleting'), subjectId: 'nobody', templateId }), status.NOT_FOUND, /subject "nobody"/);
      await rejectsWith(m.matcher.deleteTemplate({ context: ctx('deleting'), subjectId: 'frank', templateId: 'x' }), status.INVALID_ARGUMENT, /template_id: must be a template id/);
    });

    it('refuses bad embeddings, a missing consent and an unknown model with clear statuses', async () => {
      const face = randomUnitVector(random);
      const bad = (mutate: (e: ReturnType<typeof embedding>) => void) => {
        const e = embedding(face, models.v1);
        mutate(e);
        return m.matcher.identify({ context: ctx('acme'), probe: e });
      };
      await rejectsWith(bad((e) => (e.dim = 64)), status.INVALID_ARGUMENT, /probe.vector: must hold 64 float32 values \(256 bytes\) for dim 64, got 512 bytes/);
      const short = randomUnitVector(random, 64);
      await rejectsWith(m.matcher.identify({ context: ctx('acme'), probe: embedding(short, models.v1) }), status.INVALID_ARGUMENT, /probe.dim: model test-embedder v1 makes 128-dimensional embeddings, got 64/);
      const nan = new Float32Array(face);
      nan[3] = Number.NaN;
      await rejectsWith(m.matcher.identify({ context: ctx('acme'), probe: embedding(nan, models.v1) }), status.INVALID_ARGUMENT, /probe.vector: must hold finite values/);
      const long = face.map((x) => x * 2);
      await rejectsWith(m.matcher.identify({ context: ctx('acme'), probe: embedding(long, models.v1) }), status.INVALID_ARGUMENT, /must be L2-normalised .* got norm 2\.0000/);
      await rejectsWith(bad((e) => (e.model = undefined)), status.INVALID_ARGUMENT, /probe.model.name: is required/);
      await rejectsWith(bad((e) => (e.model = { ...models.v1, version: 9 })), status.FAILED_PRECONDITION, /test-embedder v9 is not in the model registry/);
      await rejectsWith(bad((e) => (e.model = { ...models.v1, sha256: '0'.repeat(64) })), status.INVALID_ARGUMENT, /probe.model.sha256: is not the sha256 of test-embedder v1/);
      await rejectsWith(m.matcher.identify({ context: ctx(''), probe: embedding(face, models.v1) }), status.INVALID_ARGUMENT, /context.tenant_id: is required/);
      await rejectsWith(m.matcher.identify({ context: ctx('acme'), probe: embedding(face, models.v1), topK: 500 }), status.INVALID_ARGUMENT, /top_k: must be at most 100/);

      const noConsent = m.matcher.enrollTemplates({ context: ctx('acme'), requestId: 'nc', subjectId: 'zed', templates: [{ embedding: embedding(face, models.v1) }] });
      const error = await rejectsWith(noConsent, status.INVALID_ARGUMENT, /consent: is required/);
      assert.deepEqual(error.fieldViolations.map((f) => f.field), ['consent']);
      const expired = { ...consent(), givenAt: { $typeName: 'google.protobuf.Timestamp' as const, seconds: BigInt(Math.floor(Date.now() / 1000) - 10 * 86_400), nanos: 0 }, retentionDays: 5 };
      await rejectsWith(
        m.matcher.enrollTemplates({ context: ctx('acme'), requestId: 'exp', subjectId: 'zed', consent: expired, templates: [{ embedding: embedding(face, models.v1) }] }),
        status.INVALID_ARGUMENT,
        /consent.retention_days: the retention period has already ended/,
      );
      await rejectsWith(
        m.matcher.enrollTemplates({ context: ctx('acme'), requestId: 'bad-id', subjectId: 'not valid!', consent: consent(), templates: [] }),
        status.INVALID_ARGUMENT,
        /subject_id: must be 1-128 .*templates: must hold 1-32 templates/,
      );
    });

    it('moves a large partition to HNSW and still finds every enrolled face', async () => {
      const own = await backend.fresh(); // an embedded gallery admits one matcher at a time
      const small = await startInProcessMatcher({ ...env(), ...own.env, FACEPRINT_MATCHER_EXACT_SEARCH_LIMIT: '50' });
      try {
        const faces = Array.from({ length: 120 }, () => randomUnitVector(random));
        await small.matcher.enrollTemplates({
          context: ctx('big'),
          requestId: 'bulk',
          subjectId: 'many',
          consent: consent(),
          templates: faces.slice(0, 32).map((f) => ({ embedding: embedding(f, models.v1) })),
        });
        for (let i = 32; i < faces.length; i++) {
          await small.matcher.enrollTemplates({ context: ctx('big'), requestId: `one-${i}`, subjectId: `s${i}`, consent: consent(), templates: [{ embedding: embedding(faces[i]!, models.v1) }] });
        }
        await sleep(200); // the graph is built in the background
        for (let i = 32; i < faces.length; i += 7) {
          const top = await small.matcher.identify({ context: ctx('big'), probe: embedding(nearby(faces[i]!, random, 0.03), models.v1), topK: 1 });
          assert.equal(top.candidates[0]?.subjectId, `s${i}`);
        }
      } finally {
        await small.close();
        await own.drop();
      }
    });

    it('loses nothing acknowledged across a matcher restart, and reloads its index from the database', async () => {
      const face = randomUnitVector(random);
      await enroll('durable', 'gina', [face]);
      await m.close();
      m = await startInProcessMatcher(env());
      const found = await m.matcher.identify({ context: ctx('durable'), probe: embedding(face, models.v1) });
      assert.equal(found.candidates[0]?.subjectId, 'gina');
      assert.ok(found.candidates[0].decision!.score > 0.999);
    });

    it('records gallery calls in an append-only audit trail that only the compliance role reads', async () => {
      const face = randomUnitVector(random);
      await enroll('audited', 'lena', [face]);
      await m.matcher.verify({ context: ctx('audited', { callerId: 'kiosk-7', requestId: 'r-verify' }), subjectId: 'lena', probe: embedding(nearby(face, random, 0.03), models.v1) });
      await m.matcher.identify({ context: ctx('audited'), probe: embedding(face, models.v1) });
      await m.matcher.getSubject({ context: ctx('audited'), subjectId: 'lena' });
      await rejectsWith(m.matcher.verify({ context: ctx('audited'), subjectId: 'nobody', probe: embedding(face, models.v1) }), status.NOT_FOUND, /not found/);

      await rejectsWith(m.compliance.listAuditEvents({ context: ctx('audited') }), status.PERMISSION_DENIED, /needs the "compliance" role/);
      const officer = ctx('audited', { roles: ['compliance'], callerId: 'dpo' });
      const all = (await m.compliance.listAuditEvents({ context: officer })).events;
      assert.deepEqual(
        all.map((e) => [AuditAction[e.action], AuditOutcome[e.outcome], e.subjectId]),
        [
          ['VERIFY', 'FAILURE', ''],
          ['READ', 'SUCCESS', 'lena'],
          ['IDENTIFY', 'SUCCESS', 'lena'],
          ['VERIFY', 'SUCCESS', 'lena'],
          ['ENROLL', 'SUCCESS', 'lena'],
        ],
      );
      const verified = all[3]!;
      assert.deepEqual([verified.actor, verified.requestId, verified.details.decision, verified.details.target_far], ['kiosk-7', 'r-verify', 'match', '0.0001']);
      assert.equal(all[4]!.details.purpose, 'access_control');
      // Never embeddings: the events hold no vector bytes in any encoding.
      const bytes = Buffer.from(face.buffer);
      const text = JSON.stringify(all.map((e) => e.details));
      for (const encoded of [bytes.toString('hex'), bytes.toString('base64')]) assert.ok(!text.includes(encoded.slice(0, 16)));

      const enrolments = await m.compliance.listAuditEvents({ context: officer, subjectId: 'lena', actions: [AuditAction.ENROLL] });
      assert.equal(enrolments.events.length, 1);
      const first = await m.compliance.listAuditEvents({ context: officer, subjectId: 'lena', pageSize: 3 });
      const second = await m.compliance.listAuditEvents({ context: officer, subjectId: 'lena', pageSize: 3, pageToken: first.nextPageToken });
      assert.deepEqual([first.events.length, second.events.length, second.nextPageToken], [3, 1, '']);
      await rejectsWith(m.compliance.listAuditEvents({ context: officer, pageToken: first.nextPageToken }), status.INVALID_ARGUMENT, /another tenant or query/);
      assert.deepEqual((await m.compliance.listAuditEvents({ context: ctx('elsewhere', { roles: ['compliance'] }) })).events, [], 'scoped by tenant');

      // A refusal names a known subject; an unknown one ("nobody" above) gets no pseudonym.
      await rejectsWith(m.matcher.verify({ context: ctx('audited'), subjectId: 'lena', probe: embedding(face, models.v1), targetFar: 0.01 }), status.FAILED_PRECONDITION, /no threshold/);
      const refused = (await m.compliance.listAuditEvents({ context: officer, actions: [AuditAction.VERIFY], pageSize: 1 })).events[0]!;
      assert.deepEqual([AuditOutcome[refused.outcome], refused.subjectId, refused.details.status], ['FAILURE', 'lena', 'FAILED_PRECONDITION']);

      if (backend.name === 'PostgreSQL') {
        const schema = gallery.env.FACEPRINT_DATABASE_SCHEMA!;
        assert.deepEqual(await queryTestDatabase(`SELECT subject_id FROM ${schema}.subject_pseudonyms WHERE subject_id = 'nobody'`), []);
        for (const statement of [`UPDATE ${schema}.audit_events SET actor = 'x'`, `DELETE FROM ${schema}.audit_events`, `TRUNCATE ${schema}.audit_events`]) {
          await assert.rejects(queryTestDatabase(statement), /audit_events is append-only/, statement);
        }
      }
    });

    it('compares two embeddings without the gallery, at the calibrated threshold', async () => {
      const face = randomUnitVector(random);
      const same = await m.matcher.compare({ context: ctx('acme'), first: embedding(face, models.v1), second: embedding(nearby(face, random, 0.02), models.v1), targetFar: 1e-3 });
      assert.equal(same.decision?.isMatch, true);
      assert.equal(same.decision?.threshold, TEST_THRESHOLDS[1e-3]);
      const other = await m.matcher.compare({ context: ctx('acme'), first: embedding(face, models.v1), second: embedding(randomUnitVector(random), models.v1) });
      assert.equal(other.decision?.isMatch, false);
      assert.equal(other.decision?.targetFar, 1e-4, 'the tenant default');
      await rejectsWith(m.matcher.compare({ context: ctx('acme'), first: embedding(face, models.v1), second: embedding(face, models.v2) }), status.INVALID_ARGUMENT, /second.model: must be the first embedding's model version/);
      await rejectsWith(m.matcher.compare({ context: ctx('acme'), first: embedding(face, models.uncalibrated), second: embedding(face, models.uncalibrated) }), status.FAILED_PRECONDITION, /threshold|calibrat/);
    });

    it('applies its migrations once: a second start applies nothing', async () => {
      if (backend.name !== 'PostgreSQL') return; // the embedded database is checked by the restart above
      const rows = await queryTestDatabase<{ version: number }>(`SELECT version FROM ${gallery.env.FACEPRINT_DATABASE_SCHEMA}.schema_migrations`);
      assert.deepEqual(rows.map((r) => r.version), (await readMigrations()).map((m) => m.version));
    });
  });
}
