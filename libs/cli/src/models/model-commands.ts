/**
 * `faceprint models`: the trainer's registry and jobs. `list`, `evaluate` (a job, with progress on
 * standard error) and `promote` (through the gates; `--force` past them). `train` and `quantize`
 * say that they are not implemented yet. Talks to the trainer (`--trainer HOST:PORT`, env
 * FACEPRINT_TRAINER_ADDRESS, default the local mesh's 127.0.0.1:50055).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { JobKind, JobState, ModelTask, TrainerService, type Job } from '@faceprint/contracts/trainer';
import { clientCredentialsFromEnv, createClient, DEFAULT_GRPC_PORTS } from '@faceprint/service-kit';
import { EXIT, UsageError } from '../gateway/connection.js';

export const MODELS_USAGE = `faceprint models list [--json]
faceprint models evaluate NAME@VERSION --pairs FILE [--root DIR] [--name DATASET] [--face largest|central] [--json]
faceprint models promote NAME@VERSION [--force] [--reason TEXT] [--json]
  --trainer HOST:PORT (env FACEPRINT_TRAINER_ADDRESS; default 127.0.0.1:${DEFAULT_GRPC_PORTS.trainer})`;

const OPTIONS = { trainer: { type: 'string' }, json: { type: 'boolean', default: false } } as const;

function trainerClient(address: string | undefined) {
  const target = address ?? process.env.FACEPRINT_TRAINER_ADDRESS ?? `127.0.0.1:${DEFAULT_GRPC_PORTS.trainer}`;
  const credentials = clientCredentialsFromEnv(process.env);
  return createClient(TrainerService, target, { defaultTimeoutMs: 60_000, ...(credentials ? { credentials } : {}) });
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
  if (command === 'promote') return promote(rest);
  if (command === 'train' || command === 'quantize') {
    process.stderr.write(`faceprint: models ${command} is not implemented yet (the trainer runs evaluation jobs and gated promotion today)\n`);
    return EXIT.failed;
  }
  throw new UsageError(`models takes list, evaluate or promote\n${MODELS_USAGE}`);
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: OPTIONS });
  const trainer = trainerClient(values.trainer);
  try {
    const { models } = await trainer.listModels({});
    const rows = models.map((m) => ({ name: m.name, task: ModelTask[m.task]?.toLowerCase(), current: m.currentVersion || null, versions: m.versions }));
    print(values.json, { models: rows }, ['model                        task       current  versions', ...rows.map((r) => `${r.name.padEnd(28)} ${String(r.task).padEnd(10)} ${String(r.current ?? '-').padStart(7)}  ${r.versions.join(', ')}`)].join('\n'));
    return EXIT.ok;
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
  const trainer = trainerClient(values.trainer);
  try {
    const { job } = await trainer.startJob({ requestId: `cli-${Date.now()}-${process.pid}`, spec: { kind: JobKind.EVALUATE, baseModel: model, dataset: resolve(values.pairs), parameters } });
    let last: Job | undefined = job;
    for await (const update of trainer.watchJob({ jobId: job!.jobId }, { timeoutMs: 24 * 3_600_000 })) {
      last = update.job;
      if (process.stderr.isTTY) process.stderr.write(`\r${last?.progress?.message ?? ''}`.padEnd(80));
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
    const metrics = last?.progress?.metrics ?? {};
    print(values.json, { job_id: last?.jobId, state: JobState[last?.state ?? 0], model: `${model.name}@${model.version}`, metrics, error: last?.error || undefined }, last?.state === JobState.SUCCEEDED ? `${last.progress?.message}\n${Object.entries(metrics).map(([k, v]) => `  ${k}: ${Number.isInteger(v) ? v : v.toFixed(4)}`).join('\n')}` : `job ${last?.jobId} ${JobState[last?.state ?? 0]}: ${last?.error}`);
    return last?.state === JobState.SUCCEEDED ? EXIT.ok : EXIT.failed;
  } finally {
    trainer.close();
  }
}

async function promote(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...OPTIONS, force: { type: 'boolean', default: false }, reason: { type: 'string' } } });
  const model = modelRef(positionals[0]);
  const trainer = trainerClient(values.trainer);
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
