/**
 * The matcher as its own process: the standard process checks, and durability: what it
 * acknowledged survives a crash of the matcher (SIGKILL) on both databases, and a crash of the
 * PostgreSQL server itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MatcherService } from '@faceprint/contracts/matcher';
import { waitForServiceProcess } from '@faceprint/mesh';
import { createClient } from '@faceprint/service-kit';
import { describeServiceProcess, dropSchema, scratchSchemaName, skipUnlessPostgres, skipUnlessPrivatePostgres, spawnService, startPrivatePostgres, TEST_DATABASE_URL } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { consent, embedding, randomUnitVector, seededRandom, testEmbedderRegistry, type TestModels } from './test-support.js';

const processDataDir = mkdtempSync(join(tmpdir(), 'faceprint-matcher-process-'));
after(() => Promise.all([processDataDir, `${processDataDir}-keys`, `${processDataDir}-index`].map((dir) => rm(dir, { recursive: true, force: true }))));

describeServiceProcess('matcher', {
  env: { FACEPRINT_MATCHER_DATA_DIR: processDataDir },
  expected: {
    enrollTemplates: status.INVALID_ARGUMENT,
    getSubject: status.INVALID_ARGUMENT,
    listSubjects: status.INVALID_ARGUMENT,
    deleteTemplate: status.INVALID_ARGUMENT,
    verify: status.INVALID_ARGUMENT,
    identify: status.INVALID_ARGUMENT,
    listAuditEvents: status.INVALID_ARGUMENT,
    getPublicKeys: status.OK, // public: no caller context needed
    compare: status.INVALID_ARGUMENT,
    eraseSubject: status.INVALID_ARGUMENT,
    exportSubject: status.INVALID_ARGUMENT,
    exportTrainingTemplates: status.INVALID_ARGUMENT,
    getGalleryStatus: status.INVALID_ARGUMENT,
    reembedTemplates: status.INVALID_ARGUMENT,
    createApiKey: status.INVALID_ARGUMENT,
    listApiKeys: status.INVALID_ARGUMENT,
    rotateApiKey: status.INVALID_ARGUMENT,
    revokeApiKey: status.INVALID_ARGUMENT,
    authenticateApiKey: status.INVALID_ARGUMENT,
  },
});

const postgresSkip = await skipUnlessPostgres();
const ctx = { tenantId: 'durable', callerId: 'test', roles: ['operator'] };

/** Starts a matcher process, enrols one face, and returns the face and the process. */
async function startAndEnroll(env: Record<string, string>, models: TestModels, subjectId: string) {
  const process = await spawnService('matcher', env);
  await waitForServiceProcess(process, Date.now() + 60_000);
  const client = createClient(MatcherService, process.address, { retry: false });
  const face = randomUnitVector(seededRandom(subjectId.length));
  await client.enrollTemplates({ context: ctx, requestId: subjectId, subjectId, consent: consent(), templates: [{ embedding: embedding(face, models.v1) }] });
  client.close();
  return { process, face };
}

/** Starts a matcher process and checks that it identifies `face` as `subjectId`. */
async function expectIdentified(env: Record<string, string>, models: TestModels, face: Float32Array, subjectId: string): Promise<void> {
  const process = await spawnService('matcher', env);
  try {
    await waitForServiceProcess(process, Date.now() + 60_000);
    const client = createClient(MatcherService, process.address, { retry: false });
    const result = await client.identify({ context: ctx, probe: embedding(face, models.v1), topK: 1 });
    client.close();
    assert.equal(result.candidates[0]?.subjectId, subjectId);
  } finally {
    await process.stop();
  }
}

describe('matcher process durability', () => {
  let models: TestModels;
  before(async () => {
    models = await testEmbedderRegistry();
  });
  after(() => rm(models.root, { recursive: true, force: true }));

  it('keeps an acknowledged enrolment in the embedded gallery across a SIGKILL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'faceprint-matcher-crash-'));
    try {
      const env = { FACEPRINT_MATCHER_DATA_DIR: dir, FACEPRINT_MODEL_REGISTRY: models.root };
      const { process, face } = await startAndEnroll(env, models, 'embedded-subject');
      process.kill('SIGKILL');
      await process.exited;
      // The crashed process's lock is taken over; the acknowledged template is there.
      await expectIdentified(env, models, face, 'embedded-subject');
    } finally {
      await Promise.all(['', '-keys', '-index'].map((suffix) => rm(`${dir}${suffix}`, { recursive: true, force: true })));
    }
  });

  it('saves its index snapshot at a clean stop, and the next start loads it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'faceprint-matcher-snapshot-'));
    try {
      const env = { FACEPRINT_MATCHER_DATA_DIR: dir, FACEPRINT_MODEL_REGISTRY: models.root };
      const { process, face } = await startAndEnroll(env, models, 'snapshot-subject');
      await process.stop();
      assert.deepEqual(await process.exited, { code: 0, signal: null }, 'it stopped by itself, the snapshot saved, before any SIGKILL');
      assert.ok(process.logs.some((line) => line.msg === 'saved an index snapshot' && line.templates === 1), 'the snapshot holds the template');
      const again = await spawnService('matcher', env);
      try {
        await waitForServiceProcess(again, Date.now() + 60_000);
        assert.equal((await again.waitForLog((line) => line.msg === 'gallery index loaded')).from, 'snapshot');
      } finally {
        await again.stop();
      }
      await expectIdentified(env, models, face, 'snapshot-subject');
    } finally {
      await Promise.all(['', '-keys', '-index'].map((suffix) => rm(`${dir}${suffix}`, { recursive: true, force: true })));
    }
  });

  it('keeps an acknowledged enrolment in PostgreSQL across a SIGKILL', { skip: postgresSkip }, async () => {
    const schema = scratchSchemaName();
    try {
      const env = { FACEPRINT_DATABASE_URL: TEST_DATABASE_URL, FACEPRINT_DATABASE_SCHEMA: schema, FACEPRINT_MODEL_REGISTRY: models.root };
      const { process, face } = await startAndEnroll({ ...env, FACEPRINT_LOG_LEVEL: 'debug' }, models, 'postgres-subject');
      // Biometric data never leaves its place: not even debug logs hold the vector.
      const bytes = Buffer.from(face.buffer, face.byteOffset, face.byteLength);
      for (const encoded of [bytes.toString('hex'), bytes.toString('base64')]) assert.ok(!process.output().includes(encoded.slice(0, 32)), 'the vector appears in the output');
      process.kill('SIGKILL');
      await process.exited;
      await expectIdentified(env, models, face, 'postgres-subject');
    } finally {
      await dropSchema(schema);
    }
  });

  it('keeps acknowledged enrolments across a crash and restart of the PostgreSQL server', { skip: skipUnlessPrivatePostgres() }, async () => {
    // A private server, so that crashing it disturbs nothing else.
    const server = startPrivatePostgres();
    const env = { FACEPRINT_DATABASE_URL: server.url, FACEPRINT_MODEL_REGISTRY: models.root, FACEPRINT_MATCHER_SYNC_INTERVAL_MS: '200' };
    let matcher: Awaited<ReturnType<typeof startAndEnroll>>['process'] | undefined;
    try {
      const enrolled = await startAndEnroll(env, models, 'before-crash');
      matcher = enrolled.process;
      server.stop('immediate'); // a crash: no checkpoint
      server.start(); // crash recovery replays the WAL
      // The running matcher reconnects and still serves what it acknowledged, and new work.
      const client = createClient(MatcherService, matcher.address); // retries UNAVAILABLE
      const found = await client.identify({ context: ctx, probe: embedding(enrolled.face, models.v1), topK: 1 });
      assert.equal(found.candidates[0]?.subjectId, 'before-crash');
      const later = randomUnitVector(seededRandom(99));
      await client.enrollTemplates({ context: ctx, requestId: 'after-crash', subjectId: 'after-crash', consent: consent(), templates: [{ embedding: embedding(later, models.v1) }] });
      assert.equal((await client.identify({ context: ctx, probe: embedding(later, models.v1), topK: 1 })).candidates[0]?.subjectId, 'after-crash');
      client.close();
    } finally {
      await matcher?.stop();
      await server.remove();
    }
  });
});
