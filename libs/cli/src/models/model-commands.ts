/**
 * `faceprint models`: the trainer's registry and jobs. `list`; `import` (bring your own model); `train`, `quantize`, `evaluate`,
 * `calibrate` and `pad-train` (jobs, with progress on standard error); `promote` (through the gates; `--force`
 * past them). Talks to the trainer (`--trainer HOST:PORT`, env FACEPRINT_TRAINER_ADDRESS, default
 * the local mesh's 127.0.0.1:50055).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fromJsonString, type MessageInitShape } from '@bufbuild/protobuf';
import { JobKind, JobState, ModelManifestSchema, ModelTask, TrainerService, type Job, type JobSpecSchema, type ModelManifest } from '@faceprint/contracts/trainer';
import { clientCredentialsFromEnv, createClient, DEFAULT_GRPC_PORTS } from '@faceprint/service-kit/clients';
import { EXIT, UsageError } from '../gateway/connection.js';
import { MODELS_USAGE } from '../usage.js';

const OPTIONS = { trainer: { type: 'string' }, json: { type: 'boolean', default: false } } as const;

async function trainerClient(address: string | undefined) {
  const localMesh = `127.0.0.1:${DEFAULT_GRPC_PORTS.trainer}`;
  const target = address ?? process.env.FACEPRINT_TRAINER_ADDRESS ?? localMesh;
  // TLS settings from the environment; else, to the local mesh's trainer, the certificate the mesh made for this command.
  const fromEnv = clientCredentialsFromEnv(process.env);
  const meshCredentials = !fromEnv && target === localMesh ? await localMeshCredentials() : undefined;
  const credentials = fromEnv ?? meshCredentials;
  // The mesh's certificates name localhost: no IP address as the TLS server name (Node's DEP0123).
  return createClient(TrainerService, target, { defaultTimeoutMs: 60_000, ...(credentials ? { credentials } : {}), ...(meshCredentials ? { serverName: 'localhost' } : {}) });
}

/** The local mesh's certificate for the faceprint command, once `npm start` has made it; else plaintext. */
async function localMeshCredentials() {
  const { DEFAULT_MESH_TLS_DIR, MeshTls } = await import('@faceprint/mesh/tls');
  const tls = new MeshTls(process.env.FACEPRINT_MESH_TLS_DIR || DEFAULT_MESH_TLS_DIR);
  return tls.credentials('cli').catch(() => undefined);
}

/** `name@version` → a model ref. */
function modelRef(text: string | undefined): { name: string; version: number } {
  const match = text ? /^([a-z0-9][a-z0-9._-]*)@([1-9]\d*)$/.exec(text) : null;
  if (!match) throw new UsageError(`name the model version as NAME@VERSION, e.g. face-recognition-net@2${text ? `, got "${text}"` : ''}`);
  return { name: match[1]!, version: Number(match[2]) };
}

const print = (json: boolean, object: unknown, text: string) => process.stdout.write(json ? `${JSON.stringify(object)}\n` : `${text}\n`);

export async function models(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'list') return list(rest);
  if (command === 'evaluate') return evaluate(rest);
  if (command === 'train') return train(rest);
  if (command === 'calibrate') return calibrateModel(rest);
  if (command === 'pad-train') return padTrain(rest);
  if (command === 'import') return importOnnx(rest);
  if (command === 'promote') return promote(rest);
  if (command === 'quantize') return quantize(rest);
  if (command === 'cancel') return cancel(rest);
  throw new UsageError(`models takes list, import, train, quantize, evaluate, calibrate, pad-train, promote or cancel\n${MODELS_USAGE}`);
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: OPTIONS });
  const trainer = await trainerClient(values.trainer);
  try {
    const { models } = await trainer.listModels({});
    const rows = models.map((m) => ({ name: m.name, task: ModelTask[m.task]?.toLowerCase(), current: m.currentVersion || null, versions: m.versions }));
    print(values.json, { models: rows }, ['model                        task       current  versions', ...rows.map((r) => `${r.name.padEnd(28)} ${String(r.task).padEnd(10)} ${String(r.current ?? '-').padStart(7)}  ${r.versions.join(', ')}`)].join('\n'));
    return EXIT.ok;
  } finally {
    trainer.close();
  }
}

/**
 * Starts a job, shows its progress on a terminal, and prints how it ended; exit 0 when it
 * succeeded and `accepted` (default: always) says its result is good.
 */
async function runJob(trainerAddress: string | undefined, json: boolean, spec: MessageInitShape<typeof JobSpecSchema>, describe: (job: Job) => Record<string, unknown>, accepted: (job: Job) => boolean = () => true): Promise<number> {
  const trainer = await trainerClient(trainerAddress);
  try {
    const { job } = await trainer.startJob({ requestId: `cli-${Date.now()}-${process.pid}`, spec });
    process.stderr.write(`job ${job!.jobId} started (faceprint models cancel ${job!.jobId} stops it)\n`);
    let last: Job | undefined = job;
    for await (const update of trainer.watchJob({ jobId: job!.jobId }, { timeoutMs: 24 * 3_600_000 })) {
      last = update.job;
      if (process.stderr.isTTY) process.stderr.write(`\r${(last?.progress?.message ?? '').padEnd(100)}`);
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
    const succeeded = last?.state === JobState.SUCCEEDED;
    const result = { job_id: last?.jobId, state: JobState[last?.state ?? 0], ...describe(last!), ...(succeeded ? {} : { error: last?.error }) };
    print(json, result, succeeded ? `${last?.progress?.message}\n${Object.entries(result).map(([k, v]) => `  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n')}` : `job ${last?.jobId} ${JobState[last?.state ?? 0]}: ${last?.error}`);
    return succeeded && accepted(last!) ? EXIT.ok : EXIT.failed;
  } finally {
    trainer.close();
  }
}

async function train(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...OPTIONS, base: { type: 'string' }, data: { type: 'string' }, root: { type: 'string' }, gallery: { type: 'string' }, resume: { type: 'string' }, loss: { type: 'string' }, epochs: { type: 'string' }, augmentations: { type: 'string' } } });
  if (!values.base || !(values.data || values.gallery)) throw new UsageError('train needs --base NAME[@VERSION], and --data DIR (a folder per identity) or an identities .tsv, or --gallery TENANT (its subjects who consented to model improvement), or both');
  const base = values.base.includes('@') ? modelRef(values.base) : { name: values.base, version: await currentVersion(values.trainer, values.base) };
  const parameters: Record<string, string> = {};
  if (values.root) parameters.root = resolve(values.root);
  if (values.gallery) parameters.gallery_tenant = values.gallery;
  if (values.resume) parameters.resume_from = values.resume;
  if (values.loss) parameters.loss = values.loss;
  if (values.epochs) parameters.epochs = values.epochs;
  if (values.augmentations) parameters.augmentations = values.augmentations;
  return runJob(values.trainer, values.json, { kind: JobKind.FINE_TUNE, baseModel: base, dataset: values.data ? resolve(values.data) : '', parameters }, (job) => ({
    base: `${base.name}@${base.version}`,
    model: job.resultModel ? `${job.resultModel.name}@${job.resultModel.version}` : undefined,
    final_loss: job.progress?.loss,
    promoted: false,
  }));
}

async function quantize(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...OPTIONS, calib: { type: 'string' }, root: { type: 'string' }, pairs: { type: 'string' }, 'calibration-images': { type: 'string' }, 'min-cosine': { type: 'string' }, 'max-accuracy-drop': { type: 'string' } },
  });
  const base = modelRef(positionals[0]);
  if (!values.calib) throw new UsageError('quantize needs --calib DIR (face images, a folder per identity) or an identities .tsv');
  const parameters: Record<string, string> = {};
  if (values.root) parameters.root = resolve(values.root);
  if (values.pairs) parameters.pairs = resolve(values.pairs);
  if (values['calibration-images']) parameters.calibration_images = values['calibration-images'];
  if (values['min-cosine']) parameters.min_cosine = values['min-cosine'];
  if (values['max-accuracy-drop']) parameters.max_accuracy_drop = values['max-accuracy-drop'];
  const figure = (job: Job, key: string) => job.progress?.metrics[`quantization/${key}`];
  // A model that fails the parity gate is still published (to inspect), but the command exits 1.
  return runJob(
    values.trainer,
    values.json,
    { kind: JobKind.QUANTIZE, baseModel: base, dataset: resolve(values.calib), parameters },
    (job) => ({
      base: `${base.name}@${base.version}`,
      model: job.resultModel ? `${job.resultModel.name}@${job.resultModel.version}` : undefined,
      passed: figure(job, 'passed') === undefined ? undefined : figure(job, 'passed') === 1,
      cosine_mean: figure(job, 'cosine_mean'),
      cosine_min: figure(job, 'cosine_min'),
      accuracy_fp32: figure(job, 'accuracy_fp32'),
      accuracy_int8: figure(job, 'accuracy_int8'),
      accuracy_drop: figure(job, 'accuracy_drop'),
      pairs: figure(job, 'pairs'),
      size_bytes: figure(job, 'size_bytes'),
      size_ratio: figure(job, 'size_ratio'),
      speed_ratio: figure(job, 'speedup'),
      fp32_ms_per_crop: figure(job, 'fp32_ms_per_crop'),
      int8_ms_per_crop: figure(job, 'int8_ms_per_crop'),
      promoted: false,
    }),
    (job) => figure(job, 'passed') === 1,
  );
}

/** Cancels a job (a fine-tune can then be resumed with `train --resume JOB_ID`). */
async function cancel(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  if (!positionals[0]) throw new UsageError('cancel needs a JOB_ID (faceprint models train prints it; ListJobs lists them)');
  const trainer = await trainerClient(values.trainer);
  try {
    const { job } = await trainer.cancelJob({ jobId: positionals[0] });
    print(values.json, { job_id: job?.jobId, state: JobState[job?.state ?? 0] }, `job ${job?.jobId}: ${JobState[job?.state ?? 0]}`);
    return EXIT.ok;
  } finally {
    trainer.close();
  }
}

/** The current version of a model, asked of the trainer. */
async function currentVersion(trainerAddress: string | undefined, name: string): Promise<number> {
  const trainer = await trainerClient(trainerAddress);
  try {
    const model = (await trainer.listModels({})).models.find((m) => m.name === name);
    if (!model?.currentVersion) throw new UsageError(`the registry has no current version of "${name}": name one as NAME@VERSION`);
    return model.currentVersion;
  } finally {
    trainer.close();
  }
}

async function evaluate(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...OPTIONS, pairs: { type: 'string' }, root: { type: 'string' }, name: { type: 'string' }, face: { type: 'string' } } });
  const model = modelRef(positionals[0]);
  if (!values.pairs) throw new UsageError('evaluate needs --pairs FILE (LFW pairs.txt or a .tsv of path_a, path_b, same)');
  const parameters: Record<string, string> = {};
  if (values.root) parameters.root = resolve(values.root);
  if (values.name) parameters.name = values.name;
  if (values.face) parameters.face = values.face;
  return runJob(values.trainer, values.json, { kind: JobKind.EVALUATE, baseModel: model, dataset: resolve(values.pairs), parameters }, (job) => ({
    model: `${model.name}@${model.version}`,
    metrics: job.progress?.metrics ?? {},
  }));
}

async function calibrateModel(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...OPTIONS, data: { type: 'string' }, root: { type: 'string' }, name: { type: 'string' }, far: { type: 'string' } } });
  const model = modelRef(positionals[0]);
  if (!values.data) throw new UsageError('calibrate needs --data DIR (a folder per identity) or an identities .tsv');
  const parameters: Record<string, string> = {};
  if (values.far) parameters.fars = values.far;
  if (values.root) parameters.root = resolve(values.root);
  if (values.name) parameters.name = values.name;
  return runJob(values.trainer, values.json, { kind: JobKind.CALIBRATE, baseModel: model, dataset: resolve(values.data), parameters }, (job) => ({
    model: `${model.name}@${model.version}`,
    metrics: job.progress?.metrics ?? {},
  }));
}

/** `models import --onnx FILE --spec SPEC.json --name NAME`: bring your own model (the trainer reads the file). */
async function importOnnx(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...OPTIONS, onnx: { type: 'string' }, spec: { type: 'string' }, name: { type: 'string' }, 'promote-if-first': { type: 'boolean', default: false } } });
  if (!values.onnx || !values.spec || !values.name) throw new UsageError('import needs --onnx FILE, --spec SPEC.json (what the model is: docs/models.md) and --name NAME');
  let spec: ModelManifest;
  try {
    spec = fromJsonString(ModelManifestSchema, await readFile(values.spec, 'utf8'));
  } catch (error) {
    throw new UsageError(`--spec ${values.spec}: not a model manifest in protobuf JSON (${(error as Error).message})`);
  }
  const trainer = await trainerClient(values.trainer);
  try {
    const { manifest, created } = await trainer.importOnnxModel({ name: values.name, onnxPath: resolve(values.onnx), spec, promoteIfFirst: values['promote-if-first'] });
    const ref = `${manifest!.model!.name}@${manifest!.model!.version}`;
    print(values.json, { model: ref, sha256: manifest!.model!.sha256, created }, `${ref} ${created ? 'imported' : 'already held (identical file)'}, sha256 ${manifest!.model!.sha256.slice(0, 12)}; calibrate it before the matcher decides with it: faceprint models calibrate ${ref} --data DIR`);
    return EXIT.ok;
  } finally {
    trainer.close();
  }
}

async function padTrain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...OPTIONS, frames: { type: 'string' }, license: { type: 'string' }, root: { type: 'string' }, name: { type: 'string' }, 'dataset-name': { type: 'string' }, 'target-bpcers': { type: 'string' } },
  });
  if (!values.frames || !values.license) throw new UsageError('pad-train needs --frames FRAMES.tsv (file, label, split) and --license (the licence of the training frames, which the model takes on)');
  const parameters: Record<string, string> = { license: values.license };
  if (values.root) parameters.root = resolve(values.root);
  if (values.name) parameters.name = values.name;
  if (values['dataset-name']) parameters.dataset_name = values['dataset-name'];
  if (values['target-bpcers']) parameters.target_bpcers = values['target-bpcers'];
  return runJob(values.trainer, values.json, { kind: JobKind.PAD_TRAIN, dataset: resolve(values.frames), parameters }, (job) => ({
    model: job.resultModel ? `${job.resultModel.name}@${job.resultModel.version}` : null,
    metrics: job.progress?.metrics ?? {},
  }));
}

async function promote(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...OPTIONS, force: { type: 'boolean', default: false }, reason: { type: 'string' } } });
  const model = modelRef(positionals[0]);
  const trainer = await trainerClient(values.trainer);
  try {
    const promoted = await trainer.promoteModel({ model, force: values.force, reason: values.reason ?? '' });
    const gates = promoted.gates.map((g) => ({ name: g.name, passed: g.passed, detail: g.detail }));
    print(
      values.json,
      { previous: promoted.previous ? `${promoted.previous.name}@${promoted.previous.version}` : null, current: `${model.name}@${model.version}`, gates },
      [`${model.name}: current is now v${model.version}${promoted.previous ? ` (was v${promoted.previous.version})` : ''}`, ...gates.map((g) => `  ${g.passed ? 'pass' : 'FAIL'}  ${g.name}: ${g.detail}`)].join('\n'),
    );
    return EXIT.ok;
  } finally {
    trainer.close();
  }
}
