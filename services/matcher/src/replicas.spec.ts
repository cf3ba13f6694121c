/**
 * Several matcher replicas on one PostgreSQL gallery: changes reach every replica's index, an
 * acknowledged deletion is never returned by any replica, and dropped database connections
 * (what a Postgres restart looks like from the matcher) heal without losing anything.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dropSchema, queryTestDatabase, scratchSchemaName, skipUnlessPostgres, TEST_DATABASE_URL } from '@faceprint/testing';
import { consent, embedding, randomUnitVector, seededRandom, startInProcessMatcher, testEmbedderRegistry, type InProcessMatcher, type TestModels } from './test-support.js';

describe('matcher replicas on PostgreSQL', { skip: await skipUnlessPostgres() }, () => {
  const schema = scratchSchemaName();
  const random = seededRandom(7);
  const ctx = { tenantId: 'replicated', callerId: 'test', roles: ['operator'] };
  let models: TestModels;
  let a: InProcessMatcher;
  let b: InProcessMatcher;
  let requests = 0;
  const enroll = (on: InProcessMatcher, subjectId: string, face: Float32Array) =>
    on.matcher.enrollTemplates({ context: ctx, requestId: `r${++requests}`, subjectId, consent: consent(), templates: [{ embedding: embedding(face, models.v1) }] });
  const identify = (on: InProcessMatcher, face: Float32Array) => on.matcher.identify({ context: ctx, probe: embedding(face, models.v1), topK: 1 });

  /** Polls `on` until it identifies `face` as `subjectId`; returns how long that took. */
  const waitUntilFound = async (on: InProcessMatcher, face: Float32Array, subjectId: string): Promise<number> => {
    const started = Date.now();
    while ((await identify(on, face)).candidates[0]?.subjectId !== subjectId) {
      assert.ok(Date.now() - started < 10_000, `${subjectId} did not reach the other replica`);
      await sleep(5);
    }
    return Date.now() - started;
  };

  before(async () => {
    models = await testEmbedderRegistry();
    // A long poll interval: what arrives quickly arrives by notification.
    const env = { FACEPRINT_DATABASE_URL: TEST_DATABASE_URL, FACEPRINT_DATABASE_SCHEMA: schema, FACEPRINT_MODEL_REGISTRY: models.root, FACEPRINT_MATCHER_SYNC_INTERVAL_MS: '5000' };
    a = await startInProcessMatcher(env);
    b = await startInProcessMatcher(env);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await dropSchema(schema);
    await rm(models.root, { recursive: true, force: true });
  });

  it('a template enrolled on one replica is found by the other, by notification', async () => {
    const face = randomUnitVector(random);
    await enroll(a, 'hana', face);
    const lagMs = await waitUntilFound(b, face, 'hana');
    assert.ok(lagMs < 2_000, `took ${lagMs} ms: slower than a notification`);
  });

  it('once a deletion is acknowledged, no replica returns the template, even while searches run', async () => {
    const face = randomUnitVector(random);
    const enrolled = await enroll(a, 'ivan', face);
    await waitUntilFound(b, face, 'ivan');
    let acknowledgedAt = Infinity;
    let stop = false;
    const violations: string[] = [];
    const searches = (async () => {
      while (!stop) {
        const started = Date.now();
        const result = await identify(b, face);
        if (started > acknowledgedAt && result.candidates.some((c) => c.subjectId === 'ivan')) violations.push(`search started ${started - acknowledgedAt} ms after the ack`);
      }
    })();
    await sleep(50);
    await a.matcher.deleteTemplate({ context: ctx, subjectId: 'ivan', templateId: enrolled.templates[0]!.templateId });
    acknowledgedAt = Date.now();
    await sleep(300);
    stop = true;
    await searches;
    assert.deepEqual(violations, []);
  });

  it('heals dropped database connections (a Postgres restart) without losing acknowledged work', async () => {
    const before = randomUnitVector(random);
    await enroll(a, 'jade', before);
    await waitUntilFound(b, before, 'jade');
    // Drop every connection of this suite's matchers (and no one else's), as a server restart would.
    const dropped = await queryTestDatabase<{ pid: number }>(
      `SELECT pg_terminate_backend(pid) AS pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
      [`faceprint-matcher:${schema}`],
    );
    assert.ok(dropped.length >= 2, 'the matchers had connections to drop');
    await sleep(200);
    assert.equal((await identify(a, before)).candidates[0]?.subjectId, 'jade', 'acknowledged work is still there');
    const after = randomUnitVector(random);
    await enroll(a, 'kim', after);
    // The other replica's notification connection reconnects (or its poll catches up).
    await waitUntilFound(b, after, 'kim');
  });
});
