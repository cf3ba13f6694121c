import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobKind, JobState, ModelManifestSchema, ModelTask, TrainerService, type Job } from '@faceprint/contracts/trainer';
import { create, toJson } from '@bufbuild/protobuf';
import { MODEL_FILE, ModelRegistry } from '@faceprint/model-registry';
import { createClient, loadServerConfig, startServer, type FaceprintServer, type ServiceClient, type ServiceSetup } from '@faceprint/service-kit';
import { createLogger } from '@faceprint/telemetry';
import { IDENTITIES_DIR, MODEL_MIRROR, SHARED_DIR, skipUnlessPresent, rejectsWith } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { acquireServices, REPO_ROOT } from '@faceprint/mesh';
import { decodeEmbedding, encodeEmbedding } from '@faceprint/contracts';
import { DetectorService } from '@faceprint/contracts/detector';
import { EmbedderService } from '@faceprint/contracts/embedder';
import { AuditAction, LegalBasis, PixelFormat } from '@faceprint/contracts/common';
import { ComplianceService, MatcherService } from '@faceprint/contracts/matcher';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { seededRandom } from '@faceprint/evaluation';
import sharp from 'sharp';
import { trainerService } from './trainer-service.js';

const run = promisify(execFile);
const GROUPS = join(SHARED_DIR, 'models/test-images/groups');
const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);


describe('TrainerService', { skip: skipUnlessPresent(MODEL_MIRROR) }, () => {
  let root: string;
  let server: FaceprintServer;
  let setup: ServiceSetup;
  let trainer: ServiceClient<typeof TrainerService>;
  let matcherProcess: Awaited<ReturnType<typeof acquireServices>>;
  let matcherDir: string;
  let dataDir: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'faceprint-trainer-'));
    const log = createLogger({ service: 'trainer', level: 'silent' });
    // A gallery to learn from: a matcher process (embedded database) with a registry of its own
    // (the same default models), so that the trainer's registry starts empty.
    matcherDir = await mkdtemp(join(tmpdir(), 'faceprint-trainer-gallery-'));
    matcherProcess = await acquireServices(['matcher'], undefined, { FACEPRINT_MODEL_REGISTRY: join(matcherDir, 'models'), FACEPRINT_MODEL_MIRROR: MODEL_MIRROR, FACEPRINT_MATCHER_DATA_DIR: matcherDir });
    dataDir = await mkdtemp(join(tmpdir(), 'faceprint-trainer-jobs-'));
    setup = trainerService({ registryRoot: root, mirrorDir: MODEL_MIRROR, dataDir, promotionMargin: 0.02, matcherAddress: matcherProcess.addresses.matcher! }, { log });
    server = await startServer({ config: loadServerConfig('trainer', { FACEPRINT_GRPC_PORT: '0' }), log, services: setup.services });
    await setup.ready!();
    trainer = createClient(TrainerService, server.address, { retry: false });
  });
  /** `faceprint models ...` against this trainer: its exit code and output. */
  const cli = (...args: string[]) =>
    run(join(REPO_ROOT, 'node_modules/.bin/faceprint'), ['models', ...args, '--trainer', server.address], { cwd: REPO_ROOT }).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
  after(async () => {
    trainer.close();
    await server.shutdown();
    await setup.close!();
    await matcherProcess?.stop();
    await rm(root, { recursive: true, force: true });
    await rm(matcherDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  });

  it('imports the default models through the rpc and lists them with their current versions', async () => {
    // A source that cannot be read fails the import and leaves the registry empty.
    await rejectsWith(trainer.importModel({ importer: 'yunet-n', mirrorDir: join(root, 'nowhere') }), status.FAILED_PRECONDITION, /import of yunet-n failed: model mirror: cannot read/);
    assert.deepEqual((await trainer.listModels({})).models, []);
    for (const importer of ['yunet-n', 'face-recognition-net', 'face-landmark-68']) {
      const { manifest, created } = await trainer.importModel({ importer, promoteIfFirst: true });
      assert.equal(created, true, importer);
      assert.equal(manifest?.model?.version, 1);
    }
    const { models } = await trainer.listModels({});
    assert.deepEqual(
      models.map((m) => [m.name, m.currentVersion, m.versions]),
      [
        ['face-landmark-68', 1, [1]],
        ['face-recognition-net', 1, [1]],
        ['yunet-n', 1, [1]],
      ],
    );
    const embedders = await trainer.listModels({ task: ModelTask.EMBEDDER });
    assert.deepEqual(embedders.models.map((m) => m.name), ['face-recognition-net']);
    const { manifest } = await trainer.getModelManifest({ name: 'face-recognition-net' });
    assert.equal(manifest?.embeddingDim, 128);
  });

  it('promotes atomically, and a watching reader sees the new version', async () => {
    // A second version of the landmark model: same weights, another producer line, another sha256.
    const registry = new ModelRegistry(root);
    const current = await registry.loadModel('face-landmark-68');
    const bytes = new Uint8Array([...current.bytes, 0x3a, 0x00]); // an unknown trailing field: still a valid model
    await registry.publish({ name: 'face-landmark-68', manifest: current.manifest, model: bytes });

    const seen: (number | undefined)[] = [];
    const stop = registry.watchCurrent('face-landmark-68', (version) => seen.push(version), { intervalMs: 20 });
    await sleep(60);
    const promoted = await trainer.promoteModel({ model: { name: 'face-landmark-68', version: 2 }, reason: 'test' });
    assert.equal(promoted.previous?.version, 1);
    assert.equal(promoted.current?.version, 2);
    assert.ok(promoted.gates.every((gate) => gate.passed));
    await sleep(100);
    stop();
    assert.deepEqual(seen, [1, 2]);
  });

  it('evaluates one version on a pairs file in a job, streamed to the end, and records the figures in its manifest', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    // Pairs of the shared crops: each person's first crop with their others (genuine), and with the next person's (impostor).
    const people = (await readdir(IDENTITIES_DIR)).sort();
    const crop = async (person: string, i: number) => join(IDENTITIES_DIR, person, (await readdir(join(IDENTITIES_DIR, person))).sort()[i]!);
    const lines = ['path_a\tpath_b\tsame'];
    for (const [p, person] of people.entries()) {
      for (let i = 1; i < 5; i++) lines.push(`${await crop(person, 0)}\t${await crop(person, i)}\t1`);
      for (let i = 1; i < 5; i++) lines.push(`${await crop(person, 0)}\t${await crop(people[(p + 1) % people.length]!, i)}\t0`);
    }
    const pairsFile = join(root, 'crops.tsv');
    await writeFile(pairsFile, `${lines.join('\n')}\n`);

    const spec = { kind: JobKind.EVALUATE, baseModel: { name: 'face-recognition-net', version: 1 }, dataset: pairsFile, parameters: { face: 'central', name: 'crops' } };
    const { job } = await trainer.startJob({ requestId: 'eval-crops', spec });
    assert.equal((await trainer.startJob({ requestId: 'eval-crops', spec })).job?.jobId, job!.jobId, 'idempotent under its request id');
    const states: JobState[] = [];
    let last: Job | undefined;
    for await (const update of trainer.watchJob({ jobId: job!.jobId }, { timeoutMs: 300_000 })) {
      states.push(update.job!.state);
      last = update.job;
    }
    assert.equal(last?.state, JobState.SUCCEEDED, last?.error);
    assert.ok(states.includes(JobState.RUNNING) && states.at(-1) === JobState.SUCCEEDED, states.map((s) => JobState[s]).join(' '));
    assert.equal(last?.progress?.totalSteps, BigInt(new Set(lines.slice(1).flatMap((l) => l.split('\t').slice(0, 2))).size));
    const metrics = (await trainer.getModelManifest({ name: 'face-recognition-net', version: 1 })).manifest!.metrics;
    assert.equal(metrics['crops/pairs'], 64);
    assert.ok(metrics['crops/accuracy']! > 0.9, `accuracy ${metrics['crops/accuracy']}`);
    assert.ok(metrics['crops/tar_at_far_1e-3']! >= 0 && metrics['crops/tar_at_far_1e-3']! <= 1);
    assert.equal((await trainer.listJobs({ state: JobState.SUCCEEDED })).jobs[0]?.jobId, job!.jobId);
    // A finished job cancels to itself; unknown jobs and bad specs get clear statuses.
    assert.equal((await trainer.cancelJob({ jobId: job!.jobId })).job?.state, JobState.SUCCEEDED);
    await rejectsWith(trainer.getJob({ jobId: 'no-such-job' }), status.NOT_FOUND, /job "no-such-job" not found/);
    await rejectsWith(trainer.startJob({ requestId: 'bad', spec: { kind: JobKind.EVALUATE, baseModel: { name: 'face-recognition-net', version: 7 }, dataset: join(root, 'missing.tsv') } }), status.INVALID_ARGUMENT, /spec.base_model: face-recognition-net v7 is not in the registry; spec.dataset: .* is not a file/);
    await rejectsWith(trainer.startJob({ requestId: 'engine', spec: { kind: JobKind.BUILD_ENGINE, baseModel: { name: 'face-recognition-net', version: 1 } } }), status.UNIMPLEMENTED, /BUILD_ENGINE jobs are not run by the trainer: a TensorRT engine is built by a Kubernetes Job/);
  });

  it('fine-tunes a projection head on labelled crops into a new, unpromoted version that the embedder serves', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const spec = { kind: JobKind.FINE_TUNE, baseModel: { name: 'face-recognition-net', version: 1 }, dataset: IDENTITIES_DIR, parameters: { loss: 'arcface', epochs: '3', augmentations: '1', identities_per_batch: '8' } };
    const { job } = await trainer.startJob({ requestId: 'tune-crops', spec });
    let last: Job | undefined;
    const epochs: number[] = [];
    for await (const update of trainer.watchJob({ jobId: job!.jobId }, { timeoutMs: 300_000 })) {
      last = update.job;
      if (last?.progress?.epoch && !epochs.includes(last.progress.epoch)) epochs.push(last.progress.epoch);
    }
    assert.equal(last?.state, JobState.SUCCEEDED, last?.error);
    assert.deepEqual(epochs, [1, 2, 3], 'progress reports each epoch');
    const tuned = last.resultModel!;
    assert.equal(tuned.name, 'face-recognition-net');
    const { manifest } = await trainer.getModelManifest({ name: tuned.name, version: tuned.version });
    assert.equal(manifest?.lineage?.parent?.version, 1);
    assert.equal(manifest?.lineage?.steps.at(-1), 'fine-tune:arcface', 'the parent’s steps, then this one');
    assert.match(manifest?.lineage?.datasetDigest ?? '', /^[0-9a-f]{64}$/);
    assert.equal(manifest?.lineage?.hyperparameters['identities'], '8');
    assert.equal(Object.keys(manifest.metrics).filter((k) => k.startsWith('train/loss_epoch_')).length, 3, JSON.stringify(manifest.metrics));
    assert.deepEqual(manifest?.thresholds, [], 'uncalibrated until calibrated');
    assert.equal((await trainer.listModels({ task: ModelTask.EMBEDDER })).models.find((m) => m.name === tuned.name)?.currentVersion, 1, 'not promoted');
    // The exported graph runs in the embedder: evaluate it on the same pairs as v1.
    const evaluated = await trainer.startJob({ requestId: 'eval-tuned', spec: { kind: JobKind.EVALUATE, baseModel: tuned, dataset: join(root, 'crops.tsv'), parameters: { face: 'central', name: 'crops' } } });
    for await (const update of trainer.watchJob({ jobId: evaluated.job!.jobId }, { timeoutMs: 300_000 })) last = update.job;
    assert.equal(last?.state, JobState.SUCCEEDED, last?.error);
    const metrics = (await trainer.getModelManifest({ name: tuned.name, version: tuned.version })).manifest!.metrics;
    assert.equal(metrics['crops/pairs'], 64);
    // Calibrated by a job (here through the command line), it gets the thresholds the matcher decides with.
    // 40 images give 700 impostor pairs: enough to show 1e-2, not 1e-3, so only 1e-2 is recorded.
    const calibrated = await cli('calibrate', `${tuned.name}@${tuned.version}`, '--data', IDENTITIES_DIR, '--far', '1e-2,1e-3', '--json');
    assert.equal(calibrated.code, 0, calibrated.stderr);
    assert.equal((JSON.parse(calibrated.stdout) as { state: string }).state, 'SUCCEEDED');
    const thresholds = (await trainer.getModelManifest({ name: tuned.name, version: tuned.version })).manifest!.thresholds;
    // With 1e-2 / 2, the one per-comparison rate 700 pairs can show (a verify over the best of 2 templates).
    assert.deepEqual(thresholds.map((t) => [t.far, t.dataset, t.impostorPairs, t.perComparison]), [[1e-2, 'identities', 700n, false], [5e-3, 'identities', 700n, true]]);
    assert.ok(thresholds[0]!.farUpper95 > 0 && thresholds[0]!.farUpper95 < 0.02);
    const nothing = await cli('calibrate', `${tuned.name}@${tuned.version}`, '--data', IDENTITIES_DIR, '--json');
    assert.notEqual(nothing.code, 0);
    assert.match(nothing.stdout + nothing.stderr, /nothing recorded: 700 impostor pairs cannot show a false-match rate of 1e-3, 1e-4, 1e-5/);
    assert.ok(thresholds.every((t) => t.threshold > 0 && t.threshold <= 1));
    await rejectsWith(trainer.startJob({ requestId: 'tune-bad', spec: { ...spec, parameters: { loss: 'hinge', epochs: '0' } } }), status.INVALID_ARGUMENT, /parameters.loss: must be one of arcface, softmax-ls, focal, triplet; spec.parameters.epochs: 0 is out of range/);
  });

  it('resumes a cancelled fine-tune without embedding again what it had embedded', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const spec = { kind: JobKind.FINE_TUNE, baseModel: { name: 'face-recognition-net', version: 1 }, dataset: IDENTITIES_DIR, parameters: { epochs: '1', augmentations: '0', identities_per_batch: '8', seed: '5' } };
    const { job } = await trainer.startJob({ requestId: 'tune-to-cancel', spec });
    let last: Job | undefined;
    for await (const update of trainer.watchJob({ jobId: job!.jobId }, { timeoutMs: 300_000 })) {
      last = update.job;
      if (last?.state === JobState.RUNNING && (last.progress?.step ?? 0n) >= 10n) await trainer.cancelJob({ jobId: job!.jobId });
    }
    assert.equal(last?.state, JobState.CANCELLED, last?.error);
    const checkpoint = join(dataDir, 'checkpoints', `${job!.jobId}.jsonl`);
    const kept = (await readFile(checkpoint, 'utf8')).trim().split('\n').length;
    assert.ok(kept >= 10 && kept < 40, `${kept} of 40 images kept for a resume`);

    // Refused: an unknown job, a job of another dataset, a job that did not stop early.
    await rejectsWith(trainer.startJob({ requestId: 'resume-none', spec: { ...spec, parameters: { ...spec.parameters, resume_from: 'no-such-job' } } }), status.INVALID_ARGUMENT, /spec.parameters.resume_from: there is no job "no-such-job"/);
    await rejectsWith(trainer.startJob({ requestId: 'resume-other', spec: { ...spec, dataset: join(IDENTITIES_DIR, 'amy'), parameters: { ...spec.parameters, resume_from: job!.jobId } } }), status.INVALID_ARGUMENT, /is not a fine-tune of the same base model and dataset/);

    const resumed = await trainer.startJob({ requestId: 'tune-resumed', spec: { ...spec, parameters: { ...spec.parameters, resume_from: job!.jobId } } });
    const messages: string[] = [];
    for await (const update of trainer.watchJob({ jobId: resumed.job!.jobId }, { timeoutMs: 300_000 })) {
      last = update.job;
      messages.push(last?.progress?.message ?? '');
    }
    assert.equal(last?.state, JobState.SUCCEEDED, last?.error);
    assert.ok(messages.includes(`embedded 40/40 images (${kept} from job ${job!.jobId})`), messages.join('\n'));
    assert.equal((await trainer.getModelManifest({ name: 'face-recognition-net', version: last.resultModel!.version })).manifest?.lineage?.hyperparameters['faces'], '40');
    assert.deepEqual(await readdir(join(dataDir, 'checkpoints')), [], 'checkpoints are deleted once the work is done');
    await rejectsWith(trainer.startJob({ requestId: 'resume-done', spec: { ...spec, parameters: { ...spec.parameters, resume_from: resumed.job!.jobId } } }), status.INVALID_ARGUMENT, /is SUCCEEDED: only a cancelled or failed fine-tune can be resumed/);
  });

  it('fine-tunes on the gallery subjects whose consent covers model improvement, and only those', async () => {
    const { manifest: base } = await trainer.getModelManifest({ name: 'face-recognition-net', version: 1 });
    const matcher = createClient(MatcherService, matcherProcess.addresses.matcher!, { retry: false });
    const compliance = createClient(ComplianceService, matcherProcess.addresses.matcher!, { retry: false });
    try {
      // Three subjects, three templates each (a direction per subject, with a little noise); one did not consent to model improvement.
      const random = seededRandom(3);
      const unit = (v: Float32Array) => v.map((x) => x / Math.hypot(...v));
      for (const [subjectId, purpose] of [['ana', 'model_improvement'], ['ben', 'model_improvement'], ['cal', 'payment_verification']] as const) {
        const centre = Float32Array.from({ length: 128 }, () => random() - 0.5);
        const templates = [0, 1, 2].map(() => ({ embedding: { vector: encodeEmbedding(unit(centre.map((x) => x + (random() - 0.5) * 0.05))), dim: 128, model: base!.model }, quality: 0.9 }));
        await matcher.enrollTemplates({
          context: { tenantId: 'lab', callerId: 'backend', roles: ['operator'] },
          requestId: `enrol-${subjectId}`,
          subjectId,
          consent: { legalBasis: LegalBasis.EXPLICIT_CONSENT, purpose, givenAt: timestampFromDate(new Date()), collectionPoint: 'test', retentionDays: 30 },
          templates,
        });
      }
      const spec = { kind: JobKind.FINE_TUNE, baseModel: { name: 'face-recognition-net', version: 1 }, dataset: '', parameters: { gallery_tenant: 'lab', epochs: '2', identities_per_batch: '2', samples_per_identity: '2' } };
      const { job } = await trainer.startJob({ requestId: 'tune-gallery', spec });
      let last: Job | undefined;
      for await (const update of trainer.watchJob({ jobId: job!.jobId }, { timeoutMs: 300_000 })) last = update.job;
      assert.equal(last?.state, JobState.SUCCEEDED, last?.error);
      const { manifest } = await trainer.getModelManifest({ name: 'face-recognition-net', version: last.resultModel!.version });
      const h = manifest!.lineage!.hyperparameters;
      assert.deepEqual([h['images'], h['gallery_subjects'], h['gallery_templates'], h['identities']], ['0', '2', '6', '2'], JSON.stringify(h));
      // The matcher recorded each consenting subject's use for this job, and nobody else's.
      const events = await compliance.listAuditEvents({ context: { tenantId: 'lab', callerId: 'dpo', roles: ['compliance'] }, actions: [AuditAction.TRAINING_EXPORT] });
      assert.deepEqual(events.events.map((e) => [e.subjectId, e.actor, e.details['request_ref']]).sort(), [['ana', 'trainer', `fine-tune job ${job!.jobId}`], ['ben', 'trainer', `fine-tune job ${job!.jobId}`]]);
      await rejectsWith(trainer.startJob({ requestId: 'tune-nothing', spec: { ...spec, parameters: {} } }), status.INVALID_ARGUMENT, /spec.dataset: is required .* unless parameters.gallery_tenant/);
    } finally {
      matcher.close();
      compliance.close();
    }
  });

  it('quantises an embedder to INT8 on real crops (faceprint models quantize), gated on parity with its FP32 parent', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const quantised = await cli('quantize', 'face-recognition-net@1', '--calib', IDENTITIES_DIR, '--calibration-images', '20', '--json');
    assert.equal(quantised.code, 0, quantised.stderr);
    const report = JSON.parse(quantised.stdout) as Record<string, number | string | boolean>;
    assert.equal(report.state, 'SUCCEEDED');
    assert.equal(report.passed, true, quantised.stdout);
    assert.ok((report.cosine_mean as number) >= 0.99, `cosine ${report.cosine_mean}`);
    assert.ok((report.accuracy_drop as number) <= 0.003, `drop ${report.accuracy_drop}`);
    assert.ok((report.size_ratio as number) < 0.3, `size ratio ${report.size_ratio}: int8 weights are a quarter of float ones`);
    assert.ok((report.speed_ratio as number) > 0 && (report.pairs as number) > 0, quantised.stdout);
    const version = Number(String(report.model).split('@')[1]);
    const { manifest } = await trainer.getModelManifest({ name: 'face-recognition-net', version });
    assert.equal(manifest?.lineage?.parent?.version, 1);
    assert.equal(manifest?.lineage?.steps.at(-1), 'quantize:int8-qdq');
    assert.equal(manifest?.metrics['quantization/passed'], 1);

    // A quantised copy of the current version that passed parity promotes without a margin to beat.
    // The same calibration again gives the same bytes: the same version, re-measured.
    const again = JSON.parse((await cli('quantize', 'face-recognition-net@1', '--calib', IDENTITIES_DIR, '--calibration-images', '20', '--json')).stdout) as { model: string; passed: boolean };
    assert.deepEqual([again.model, again.passed], [report.model, true]);
    // Promoted through the rpc while an embedder (its own process, following `current`) is under
    // load: no request fails, and responses switch from v1 to the INT8 version.
    const embedderProcess = await acquireServices(['embedder'], undefined, { FACEPRINT_MODEL_REGISTRY: root, FACEPRINT_MODEL_MIRROR: MODEL_MIRROR });
    const embedder = createClient(EmbedderService, embedderProcess.addresses.embedder!, { retry: false });
    try {
      const pixels = await sharp(join(IDENTITIES_DIR, 'amy', 'amy1.png')).resize(150, 150).removeAlpha().raw().toBuffer();
      const face = { pixels: new Uint8Array(pixels), width: 150, height: 150, format: PixelFormat.RGB8 };
      const served: { version: number; vector: Float32Array }[] = [];
      const failures: unknown[] = [];
      let stop = false;
      const load = Promise.all(
        Array.from({ length: 8 }, async () => {
          while (!stop) {
            await embedder.embed({ faces: [face] }).then(
              (r) => served.push({ version: r.model!.version, vector: decodeEmbedding(r.embeddings[0]!.vector, r.embeddings[0]!.dim) }),
              (error: unknown) => failures.push(error),
            );
          }
        }),
      );
      await sleep(500);
      const promoted = await trainer.promoteModel({ model: { name: 'face-recognition-net', version }, reason: 'int8' });
      assert.deepEqual(promoted.gates.map((g) => [g.name, g.passed]), [['sha256', true], ['int8_parity', true]]);
      assert.equal(promoted.previous?.version, 1);
      const deadline = Date.now() + 30_000;
      while (!served.some((r) => r.version === version) && Date.now() < deadline) await sleep(100);
      await sleep(500);
      stop = true;
      await load;
      assert.deepEqual(failures, [], 'no request failed during the promotion');
      const first = served.find((r) => r.version === 1);
      const last = served.at(-1)!;
      assert.ok(first, 'served by v1 before the promotion');
      assert.equal(last.version, version, 'served by the INT8 version after it');
      assert.ok(dot(first.vector, last.vector) >= 0.99, `the same face embeds alike in both: cosine ${dot(first.vector, last.vector)}`);
    } finally {
      embedder.close();
      await embedderProcess.stop();
    }

    // One that fails parity (a gate it cannot meet) is published to inspect, but refused.
    const strict = await trainer.startJob({ requestId: 'quantize-strict', spec: { kind: JobKind.QUANTIZE, baseModel: { name: 'face-recognition-net', version: 1 }, dataset: IDENTITIES_DIR, parameters: { calibration_images: '20', min_cosine: '0.999999', seed: '2' } } });
    let last: Job | undefined;
    for await (const update of trainer.watchJob({ jobId: strict.job!.jobId }, { timeoutMs: 300_000 })) last = update.job;
    assert.equal(last?.state, JobState.SUCCEEDED, last?.error);
    assert.equal(last?.progress?.metrics['quantization/passed'], 0);
    await rejectsWith(trainer.promoteModel({ model: last.resultModel }), status.FAILED_PRECONDITION, /INT8 against its FP32 parent v1: mean cosine 0\.9\d+, .*outside the gate: cosine >= 0.999999/);

    await rejectsWith(trainer.startJob({ requestId: 'quantize-twice', spec: { kind: JobKind.QUANTIZE, baseModel: { name: 'face-recognition-net', version }, dataset: IDENTITIES_DIR } }), status.INVALID_ARGUMENT, new RegExp(`spec.base_model: face-recognition-net v${version} is already quantised`));
    await rejectsWith(trainer.startJob({ requestId: 'quantize-bad', spec: { kind: JobKind.QUANTIZE, baseModel: { name: 'face-recognition-net', version: 1 }, dataset: IDENTITIES_DIR, parameters: { min_cosine: '2' } } }), status.INVALID_ARGUMENT, /spec.parameters.min_cosine: 2 is out of range/);
    const usage = await cli('quantize', 'face-recognition-net@1');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /quantize needs --calib DIR/);
  });

  it('gates promotion of an embedder on TAR at FAR 1e-3 against the current version, unless forced', async () => {
    const registry = new ModelRegistry(root);
    const publish = async (bytes: string, tar?: number) => {
      const { manifest } = await registry.publish({ name: 'gated-embedder', model: new TextEncoder().encode(bytes), manifest: { task: ModelTask.EMBEDDER, embeddingDim: 128, description: 'placeholder' } });
      if (tar !== undefined) await registry.recordCalibration('gated-embedder', manifest.model!.version, { thresholds: [], metrics: { 'lfw/tar_at_far_1e-3': tar } });
      return manifest.model!.version;
    };
    const v1 = await publish('one', 0.8);
    assert.ok((await trainer.promoteModel({ model: { name: 'gated-embedder', version: v1 } })).gates.every((g) => g.passed), 'a first version has nothing to beat');
    const v2 = await publish('two', 0.81);
    const v3 = await publish('three');
    await rejectsWith(trainer.promoteModel({ model: { name: 'gated-embedder', version: v2 } }), status.FAILED_PRECONDITION, /lfw: TAR at FAR 1e-3 81.00% against 80.00% for the current v1: \+1.00 points; more than 2.00 required/);
    await rejectsWith(trainer.promoteModel({ model: { name: 'gated-embedder', version: v3 } }), status.FAILED_PRECONDITION, /no evaluation on a common dataset/);
    const forced = await trainer.promoteModel({ model: { name: 'gated-embedder', version: v2 }, force: true, reason: 'test' });
    assert.equal(forced.current?.version, v2);
    assert.ok(forced.gates.some((g) => !g.passed), 'the failed gate is reported');
    const v4 = await publish('four', 0.84);
    // Through the command line: a refused gate exits 2 and says why; a passing one promotes.
    const refused = await cli('promote', `gated-embedder@${v3}`);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /FAILED_PRECONDITION: gated-embedder v3 does not pass the promotion gates/);
    const promoted = JSON.parse((await cli('promote', `gated-embedder@${v4}`, '--json')).stdout) as { previous: string; current: string; gates: { passed: boolean }[] };
    assert.equal(promoted.previous, `gated-embedder@${v2}`);
    assert.equal(promoted.current, `gated-embedder@${v4}`);
    assert.ok(promoted.gates.every((g) => g.passed), JSON.stringify(promoted.gates));
    const listed = JSON.parse((await cli('list', '--json')).stdout) as { models: { name: string; current: number }[] };
    assert.equal(listed.models.find((m) => m.name === 'gated-embedder')?.current, v4);
  });

  it('imports an operator\'s own ONNX embedder from a file and a spec (a copy of the default one here), which then embeds exactly as the default does', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const { manifest: original, bytes } = await new ModelRegistry(root).loadModel('face-recognition-net', 1);
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-byo-'));
    try {
      const file = join(dir, 'my-embedder.onnx');
      await writeFile(file, bytes);
      const spec = (overrides: Record<string, unknown>) => {
        const path = join(dir, `spec-${Object.keys(overrides).join('-') || 'ok'}.json`);
        const base = create(ModelManifestSchema, { task: ModelTask.EMBEDDER, license: original.license, source: { kind: 'file', locator: 'a copy of face-recognition-net v1' }, inputs: original.inputs, outputs: original.outputs, alignment: original.alignment, embeddingDim: original.embeddingDim });
        return writeFile(path, JSON.stringify({ ...(toJson(ModelManifestSchema, base) as object), ...overrides })).then(() => path);
      };
      // A model without a licence is refused, naming the field; so is a spec the file does not fit.
      const unlicensed = await cli('import', '--onnx', file, '--spec', await spec({ license: '' }), '--name', 'my-embedder');
      assert.equal(unlicensed.code, 2, unlicensed.stderr);
      assert.match(unlicensed.stderr, /spec\.license: is required: the licence of the weights/);
      const misnamed = await cli('import', '--onnx', file, '--spec', await spec({ outputs: [{ name: 'logits' }] }), '--name', 'my-embedder');
      assert.match(misnamed.stderr, /FAILED_PRECONDITION: my-embedder.onnx has no output "logits"/);
      const imported = JSON.parse((await cli('import', '--onnx', file, '--spec', await spec({}), '--name', 'my-embedder', '--json')).stdout) as { model: string; sha256: string; created: boolean };
      assert.deepEqual([imported.model, imported.created, imported.sha256], ['my-embedder@1', true, original.model!.sha256]);
      const again = JSON.parse((await cli('import', '--onnx', file, '--spec', await spec({}), '--name', 'my-embedder', '--json')).stdout) as { created: boolean };
      assert.equal(again.created, false, 'the same file again: the same version');
      const { manifest } = await trainer.getModelManifest({ name: 'my-embedder', version: 1 });
      assert.deepEqual([manifest?.license, manifest?.source?.kind, manifest?.source?.sha256, manifest?.thresholds.length], [original.license, 'file', original.model!.sha256, 0]);
      assert.match(manifest?.lineage?.steps.at(-1) ?? '', /^imported from my-embedder\.onnx \(sha256 [0-9a-f]{64}; written by faceprint/);

      // Served by an embedder pinned to it, it embeds the identities' crops as the default version does.
      const embed = async (model: string) => {
        const services = await acquireServices(['embedder'], undefined, { FACEPRINT_MODEL_REGISTRY: root, FACEPRINT_EMBEDDER_MODEL: model });
        const embedder = createClient(EmbedderService, services.addresses.embedder!, { retry: false });
        try {
          const faces = await Promise.all(['amy', 'raj', 'leonard'].map(async (name) => ({ pixels: new Uint8Array(await sharp(join(IDENTITIES_DIR, name, `${name}1.png`)).resize(150, 150).removeAlpha().raw().toBuffer()), width: 150, height: 150, format: PixelFormat.RGB8 })));
          const { embeddings, model: served } = await embedder.embed({ faces });
          assert.equal(`${served?.name}@${served?.version}`, model);
          return embeddings.map((e) => decodeEmbedding(e.vector, e.dim));
        } finally {
          embedder.close();
          await services.stop();
        }
      };
      const [mine, theirs] = [await embed('my-embedder@1'), await embed('face-recognition-net@1')];
      mine.forEach((vector, i) => assert.ok(dot(vector, theirs[i]!) > 1 - 1e-6, `crop ${i}: cosine ${dot(vector, theirs[i]!)}`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("imports an operator's own ONNX face detector with its output decoding: RetinaFace-style (the mirror's RetinaFace) finds the faces YuNet finds, and a copy of YuNet detects exactly as the default", { skip: skipUnlessPresent(GROUPS) }, async () => {
    await trainer.importModel({ importer: 'yunet-n', promoteIfFirst: true }); // imported already by the tests above; the same version again
    const { manifest: yunet, bytes: yunetBytes } = await new ModelRegistry(root).loadModel('yunet-n', 1);
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-byo-detector-'));
    try {
      const yunetFile = join(dir, 'my-yunet.onnx');
      await writeFile(yunetFile, yunetBytes);
      const retinafaceFile = join(MODEL_MIRROR, 'detectors/retinaface/retinaface_mbnet0.25.onnx');
      const writeSpec = async (name: string, spec: Record<string, unknown>) => {
        const path = join(dir, `${name}.json`);
        await writeFile(path, JSON.stringify(spec));
        return path;
      };
      const retinafaceSpec = {
        task: 'MODEL_TASK_DETECTOR',
        license: 'MIT',
        source: { kind: 'url', locator: 'https://github.com/ShiqiYu/libfacedetection.train/raw/204b0c9f687f2fd5c012988199a3cd47feb69a90/onnx/retinaface_mbnet0.25.onnx' },
        inputs: [{ name: 'input', shape: ['1', '3', '-1', '-1'], dtype: 'float32', layout: 'NCHW', channelOrder: 'BGR', mean: [104, 117, 123], std: [1, 1, 1] }],
        detectorHead: { kind: 'retinaface', strides: [8, 16, 32], priorSizes: [{ sizes: [16, 32] }, { sizes: [64, 128] }, { sizes: [256, 512] }], variances: [0.1, 0.2], boxesOutput: 'loc', scoresOutput: 'conf', landmarksOutput: 'iou' },
      };
      // A detector without a decoding, or with one the file does not fit, is refused saying why.
      const headless = await cli('import', '--onnx', retinafaceFile, '--spec', await writeSpec('headless', { ...retinafaceSpec, detectorHead: undefined }), '--name', 'my-retinaface');
      assert.equal(headless.code, 2, headless.stderr);
      assert.match(headless.stderr, /spec\.detector_head\.kind: is required: how the outputs decode into faces/);
      const wrongPriors = await cli('import', '--onnx', retinafaceFile, '--spec', await writeSpec('wrong-priors', { ...retinafaceSpec, detectorHead: { ...retinafaceSpec.detectorHead, priorSizes: [{ sizes: [16] }, { sizes: [64] }, { sizes: [256] }] } }), '--name', 'my-retinaface');
      assert.equal(wrongPriors.code, 2, wrongPriors.stderr);
      assert.match(wrongPriors.stderr, /FAILED_PRECONDITION: retinaface_mbnet0\.25\.onnx gives 13440 values in loc for a 320x256 image, and its detector_head implies 6720/);
      const fixedSize = await cli('import', '--onnx', retinafaceFile, '--spec', await writeSpec('fixed', { ...retinafaceSpec, inputs: [{ ...retinafaceSpec.inputs[0], shape: ['1', '3', '640', '640'] }] }), '--name', 'my-retinaface');
      assert.match(fixedSize.stderr, /spec\.inputs\[0\]\.shape: must be NCHW with 3 channels and a dynamic height and width/);

      const imported = JSON.parse((await cli('import', '--onnx', retinafaceFile, '--spec', await writeSpec('retinaface', retinafaceSpec), '--name', 'my-retinaface', '--promote-if-first', '--json')).stdout) as { model: string };
      assert.equal(imported.model, 'my-retinaface@1');
      const { manifest } = await trainer.getModelManifest({ name: 'my-retinaface', version: 1 });
      assert.deepEqual([manifest?.task, manifest?.license, manifest?.detectorHead?.kind, manifest?.outputs.map((o) => o.name)], [ModelTask.DETECTOR, 'MIT', 'retinaface', ['loc', 'conf', 'iou']]);
      assert.match(manifest?.lineage?.steps.at(-1) ?? '', /written by pytorch 1\.9/);
      const yunetSpec = { ...(toJson(ModelManifestSchema, create(ModelManifestSchema, { task: yunet.task, license: yunet.license, inputs: yunet.inputs, detectorHead: yunet.detectorHead })) as object), source: { kind: 'file', locator: 'a copy of yunet-n v1' } };
      await cli('import', '--onnx', yunetFile, '--spec', await writeSpec('yunet', yunetSpec), '--name', 'my-yunet', '--promote-if-first');

      // Served by a detector, each finds the faces of the group photos.
      const detectAll = async (model: string) => {
        const services = await acquireServices(['detector'], undefined, { FACEPRINT_MODEL_REGISTRY: root, FACEPRINT_DETECTOR_MODEL: model });
        const detector = createClient(DetectorService, services.addresses.detector!, { retry: false });
        try {
          return await Promise.all(['bbt1.jpg', 'bbt4.jpg', 'sample1.jpg'].map(async (file) => {
            const response = await detector.detect({ image: { content: await readFile(join(GROUPS, file)) } });
            assert.equal(response.model?.name, model);
            return response.faces;
          }));
        } finally {
          detector.close();
          await services.stop();
        }
      };
      const [byYunet, byCopy, byRetinaface] = [await detectAll('yunet-n'), await detectAll('my-yunet'), await detectAll('my-retinaface')];
      assert.deepEqual(byCopy, byYunet, 'the copy of YuNet detects exactly as YuNet');
      const iou = (a: { x: number; y: number; width: number; height: number }, b: typeof a) => {
        const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
        const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
        return (w * h) / (a.width * a.height + b.width * b.height - w * h);
      };
      // Two models place the landmarks of a turned face differently: most agree closely, none far.
      const landmarkErrors: number[] = [];
      byYunet.forEach((faces, photo) => {
        assert.equal(byRetinaface[photo]!.length, faces.length, `photo ${photo}: as many faces`);
        for (const face of faces) {
          const match = byRetinaface[photo]!.find((other) => iou(other.box!, face.box!) > 0.5);
          assert.ok(match, `photo ${photo}: RetinaFace finds the face YuNet finds at ${JSON.stringify(face.box)}`);
          const eyeDistance = Math.hypot(face.landmarks!.leftEye!.x - face.landmarks!.rightEye!.x, face.landmarks!.leftEye!.y - face.landmarks!.rightEye!.y);
          for (const point of ['leftEye', 'rightEye', 'noseTip', 'mouthLeft', 'mouthRight'] as const) {
            const [a, b] = [face.landmarks![point]!, match.landmarks![point]!];
            landmarkErrors.push(Math.hypot(a.x - b.x, a.y - b.y) / eyeDistance);
          }
        }
      });
      landmarkErrors.sort((a, b) => a - b);
      assert.ok(landmarkErrors[Math.floor(landmarkErrors.length / 2)]! < 0.1, `median landmark disagreement ${landmarkErrors[Math.floor(landmarkErrors.length / 2)]} of the eye distance`);
      assert.ok(landmarkErrors.at(-1)! < 0.5, `largest landmark disagreement ${landmarkErrors.at(-1)} of the eye distance`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers bad requests with clear statuses', async () => {
    await rejectsWith(trainer.importModel({ importer: 'no-such-model' }), status.INVALID_ARGUMENT, /unknown importer "no-such-model"; known: yunet-n/);
    await rejectsWith(trainer.promoteModel({ model: { name: 'yunet-n', version: 9 } }), status.NOT_FOUND, /yunet-n" version 9 not found/);
    await rejectsWith(trainer.getModelManifest({ name: 'nothing-here' }), status.NOT_FOUND, /has no current version/);
    await rejectsWith(trainer.promoteModel({}), status.INVALID_ARGUMENT, /model\.name: required; model\.version: required/);
    // A PAD training job needs its frames, the licence of those frames, and sane rates, before it is queued.
    await rejectsWith(
      trainer.startJob({ requestId: 'pad-bad', spec: { kind: JobKind.PAD_TRAIN, dataset: join(root, 'no-frames.tsv'), parameters: { target_bpcers: '0.05,0.9', name: 'Bad Name' } } }),
      status.INVALID_ARGUMENT,
      /spec.dataset: ".*no-frames.tsv" does not exist; spec.parameters.license: is required: .*; spec.parameters.target_bpcers: rates in \(0, 0.5\], comma-separated, got "0.05,0.9"; spec.parameters.name: a registry model name, got "Bad Name"/,
    );
  });

  it('refuses to promote a version whose file no longer matches its sha256', async () => {
    await writeFile(join(root, 'yunet-n', '1', MODEL_FILE), new Uint8Array([1, 2, 3]));
    await rejectsWith(trainer.promoteModel({ model: { name: 'yunet-n', version: 1 } }), status.DATA_LOSS, /sha256 [0-9a-f]{64} does not match/);
  });
});
