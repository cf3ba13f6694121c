/**
 * The trainer's gRPC handlers: the model registry (list, manifest, import, gated promotion) and
 * the jobs (evaluation, calibration, fine-tuning, INT8 quantisation and presentation-attack
 * detector training; TensorRT engine builds
 * answer UNIMPLEMENTED: they run as a Kubernetes Job on a GPU node, docs/deploy.md).
 */
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { PreconditionFailureSchema } from '@faceprint/contracts/google-rpc';
import { JobKind, JobState, ModelTask, TrainerService, type JobSpec } from '@faceprint/contracts/trainer';
import { ModelRegistry, RegistryError } from '@faceprint/model-registry';
import { FaceprintError, implement, RequestValidator, type ServiceSetup, type SetupContext } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import { IMPORTERS, runImport } from './importers/index.js';
import { importOnnxFile } from './importers/onnx-file.js';
import { calibrateJob, checkCalibrateSpec } from './jobs/calibrate-job.js';
import { checkEvaluateSpec, evaluateJob } from './jobs/evaluate-job.js';
import { checkFineTuneSpec, fineTuneJob } from './jobs/fine-tune/fine-tune-job.js';
import { JobRunner, type JobWork } from './jobs/job-runner.js';
import { checkPadTrainSpec, padTrainJob } from './jobs/pad-train/pad-train-job.js';
import { checkQuantizeSpec, quantizeJob } from './jobs/quantize/quantize-job.js';
import { promotionGates } from './promotion-gates.js';
import type { TrainerConfig } from './trainer-config.js';

/** Registry failures as gRPC statuses. */
function fromRegistryError(error: unknown): unknown {
  if (!(error instanceof RegistryError)) return error;
  switch (error.kind) {
    case 'NOT_FOUND':
      return new FaceprintError(status.NOT_FOUND, error.message);
    case 'INVALID':
      return new FaceprintError(status.INVALID_ARGUMENT, error.message);
    case 'INTEGRITY':
      return new FaceprintError(status.DATA_LOSS, error.message);
  }
}

async function registryCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromRegistryError(error);
  }
}

const PAGE_SIZE_MAX = 1000;

/** The trainer's services, its job runner's start (jobs kept on disk) and clean-up. */
export function trainerService(config: TrainerConfig, { log }: Pick<SetupContext, 'log'>): ServiceSetup {
  const registry = new ModelRegistry(config.registryRoot);
  const where = { registry, root: config.registryRoot, mirrorDir: config.mirrorDir, matcherAddress: config.matcherAddress, checkpointDir: join(config.dataDir, 'checkpoints') };
  const workFor = (spec: JobSpec): JobWork => {
    if (spec.kind === JobKind.EVALUATE) return evaluateJob(where);
    if (spec.kind === JobKind.FINE_TUNE) return fineTuneJob(where);
    if (spec.kind === JobKind.CALIBRATE) return calibrateJob(where);
    if (spec.kind === JobKind.QUANTIZE) return quantizeJob(where);
    if (spec.kind === JobKind.PAD_TRAIN) return padTrainJob(where);
    throw new FaceprintError(status.UNIMPLEMENTED, `${JobKind[spec.kind] ?? 'this'} jobs are not run by the trainer: a TensorRT engine is built by a Kubernetes Job on a GPU node (docs/deploy.md)`);
  };
  const jobs = new JobRunner(join(config.dataDir, 'jobs'), workFor, log);

  /** Checks a spec and starts its job (idempotent under `requestId`). */
  const startJob = async (requestId: string, spec: JobSpec | undefined) => {
    const v = new RequestValidator();
    v.check(requestId.length >= 1 && requestId.length <= 128, 'request_id', 'is required: 1-128 characters');
    v.check(spec !== undefined && spec.kind !== JobKind.UNSPECIFIED && JobKind[spec.kind] !== undefined, 'spec.kind', 'is required');
    v.throwIfInvalid();
    const checks: Partial<Record<JobKind, typeof checkEvaluateSpec>> = {
      [JobKind.EVALUATE]: checkEvaluateSpec,
      [JobKind.FINE_TUNE]: checkFineTuneSpec,
      [JobKind.CALIBRATE]: checkCalibrateSpec,
      [JobKind.QUANTIZE]: checkQuantizeSpec,
      [JobKind.PAD_TRAIN]: checkPadTrainSpec,
    };
    const check = checks[spec!.kind];
    for (const problem of (await check?.(spec!, registry)) ?? []) v.add(`spec.${problem.split(':')[0]}`, problem.slice(problem.indexOf(':') + 2));
    const resumeFrom = spec!.kind === JobKind.FINE_TUNE ? spec!.parameters['resume_from'] : undefined;
    if (resumeFrom) {
      // A resume continues one cancelled or failed fine-tune of the same base model and dataset.
      const earlier = jobs.get(resumeFrom);
      const same = earlier?.spec?.kind === JobKind.FINE_TUNE && earlier.spec.dataset === spec!.dataset && earlier.spec.baseModel?.name === spec!.baseModel?.name && earlier.spec.baseModel?.version === spec!.baseModel?.version;
      if (!earlier) v.add('spec.parameters.resume_from', `there is no job "${resumeFrom}"`);
      else if (!same) v.add('spec.parameters.resume_from', `job ${resumeFrom} is not a fine-tune of the same base model and dataset`);
      else if (earlier.state !== JobState.CANCELLED && earlier.state !== JobState.FAILED) v.add('spec.parameters.resume_from', `job ${resumeFrom} is ${JobState[earlier.state]}: only a cancelled or failed fine-tune can be resumed`);
    }
    v.throwIfInvalid();
    return jobs.start(requestId, spec!);
  };

  const knownJob = (jobId: string) => {
    new RequestValidator().check(jobId !== '', 'job_id', 'is required').throwIfInvalid();
    const job = jobs.get(jobId);
    if (!job) throw FaceprintError.notFound('job', jobId);
    return job;
  };

  const service = implement(TrainerService, {
      async listModels({ task }) {
        const models = await registryCall(() => registry.listModels());
        return {
          models: models
            .filter((m) => task === ModelTask.UNSPECIFIED || m.task === task)
            .map((m) => ({ name: m.name, task: m.task, currentVersion: m.currentVersion ?? 0, versions: [...m.versions] })),
        };
      },

      async getModelManifest({ name, version }) {
        new RequestValidator().check(name !== '', 'name', 'required').throwIfInvalid();
        return { manifest: await registryCall(() => registry.readManifest(name, version === 0 ? undefined : version)) };
      },

      async importModel({ importer: importerName, mirrorDir, promoteIfFirst }) {
        const importer = IMPORTERS.get(importerName);
        if (!importer) {
          throw FaceprintError.invalidArgument([{ field: 'importer', description: `unknown importer "${importerName}"; known: ${[...IMPORTERS.keys()].join(', ')}` }]);
        }
        try {
          const result = await runImport(registry, importer, { mirrorDir: mirrorDir || config.mirrorDir }, { promoteIfFirst });
          return { manifest: result.manifest, created: result.created };
        } catch (error) {
          if (error instanceof RegistryError) throw fromRegistryError(error);
          throw new FaceprintError(status.FAILED_PRECONDITION, `import of ${importerName} failed: ${(error as Error).message}`, { cause: error });
        }
      },

      async importOnnxModel({ name, onnxPath, spec, promoteIfFirst }) {
        return registryCall(() => importOnnxFile(registry, { name, onnxPath, spec, promoteIfFirst }));
      },

      async promoteModel({ model, force, reason }) {
        const v = new RequestValidator();
        v.check(!!model?.name, 'model.name', 'required');
        v.check((model?.version ?? 0) > 0, 'model.version', 'required');
        v.throwIfInvalid();
        return registryCall(async () => {
          const candidate = await registry.readManifest(model!.name, model!.version);
          const currentVersion = await registry.currentVersion(model!.name);
          const current = currentVersion === undefined ? undefined : await registry.readManifest(model!.name, currentVersion);
          const gates = promotionGates(candidate, current, config.promotionMargin);
          const failed = gates.filter((g) => !g.passed);
          if (failed.length > 0 && !force) {
            throw new FaceprintError(status.FAILED_PRECONDITION, `${model!.name} v${model!.version} does not pass the promotion gates: ${failed.map((g) => g.detail).join('; ')} (force overrides)`, {
              details: [create(PreconditionFailureSchema, { violations: failed.map((g) => ({ type: 'PROMOTION_GATE', subject: g.name, description: g.detail })) })],
            });
          }
          if (failed.length > 0) log.warn({ model: model!.name, version: model!.version, reason, failedGates: failed.map((g) => g.name) }, 'promoted past failed gates (forced)');
          const { previous } = await registry.promote(model!.name, model!.version);
          // The version replaced is the one gated against, unless a promotion happened in between.
          const before = previous === undefined ? undefined : previous === currentVersion ? current!.model : (await registry.readManifest(model!.name, previous)).model;
          log.info({ model: model!.name, version: model!.version, previous, reason }, 'model promoted');
          return { previous: before, current: candidate.model, gates };
        });
      },

      async evaluateModel({ model, dataset, calibrate }) {
        // EvaluateModel carries no request id: each call starts a new job (StartJob is the idempotent way).
        // With `calibrate`, the dataset is labelled images and the job records thresholds.
        const kind = calibrate ? JobKind.CALIBRATE : JobKind.EVALUATE;
        const job = await startJob(`${JobKind[kind]}:${model?.name}@${model?.version}:${dataset}:${Date.now()}`, { $typeName: 'faceprint.trainer.v1.JobSpec', kind, baseModel: model, dataset, parameters: {} });
        return { job };
      },

      async startJob({ requestId, spec }) {
        return { job: await startJob(requestId, spec) };
      },

      async getJob({ jobId }) {
        return { job: knownJob(jobId) };
      },

      async listJobs({ state, pageSize, pageToken }) {
        const v = new RequestValidator();
        v.check(pageSize <= PAGE_SIZE_MAX, 'page_size', `must be at most ${PAGE_SIZE_MAX}`);
        v.check(pageToken === '' || /^\d+$/.test(pageToken), 'page_token', 'is not a token this rpc returned');
        v.throwIfInvalid();
        const all = jobs.list().filter((j) => !state || j.state === state);
        const offset = Number(pageToken || 0);
        const size = pageSize || 100;
        return { jobs: all.slice(offset, offset + size), nextPageToken: offset + size < all.length ? String(offset + size) : '' };
      },

      async cancelJob({ jobId }) {
        knownJob(jobId);
        return { job: await jobs.cancel(jobId) };
      },

      async *watchJob({ jobId }, ctx) {
        knownJob(jobId);
        for await (const job of jobs.watch(jobId, ctx.signal)) yield { job };
      },
    });

  return {
    services: [service],
    ready: () => jobs.open(),
    close: () => jobs.close(),
  };
}
