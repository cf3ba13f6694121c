/** The trainer's own settings: where the registry is and where model sources may be mirrored. */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { registryRootFromEnv } from '@faceprint/model-registry';
import { fileURLToPath } from 'node:url';
import { compileEnv, decimal, DEFAULT_GRPC_PORTS } from '@faceprint/service-kit';
import { makeValidator, str } from 'envalid';

/** The trainer's settings. */
export interface TrainerConfig {
  /** The registry root. `FACEPRINT_MODEL_REGISTRY`, default `<repo>/data/models`. */
  readonly registryRoot: string;
  /** A mirror of URL-sourced model files (shared/models layout); unset: download. `FACEPRINT_MODEL_MIRROR`. */
  readonly mirrorDir: string | undefined;
  /** Where jobs are kept (one JSON file each). `FACEPRINT_TRAINER_DATA_DIR`, default `<repo>/data/trainer`. */
  readonly dataDir: string;
  /**
   * How much TAR at FAR 1e-3 a candidate embedder must gain over the current one to be promoted
   * (0.02 = 2 points). `FACEPRINT_TRAINER_PROMOTION_MARGIN`, default 0.02.
   */
  readonly promotionMargin: number;
  /**
   * The matcher, whose subjects with a model_improvement consent a fine-tune may learn from
   * (ExportTrainingTemplates; TLS from the FACEPRINT_TLS_* client settings).
   * `FACEPRINT_MATCHER_ADDRESS`, default `127.0.0.1:50054`.
   */
  readonly matcherAddress: string;
}

/** The trainer's data directory unless FACEPRINT_TRAINER_DATA_DIR says otherwise. */
export const DEFAULT_TRAINER_DIR = fileURLToPath(new URL('../../../data/trainer', import.meta.url));

/** Relative paths are relative to where the user ran the command (npm -w changes directory). */
const fromInvocationDirectory = (path: string) => resolve(process.env.INIT_CWD ?? process.cwd(), path);

const existingDirectory = makeValidator<string>((input) => {
  if (input === '') return '';
  const path = fromInvocationDirectory(input);
  if (!statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`"${input}" is not a directory`);
  return path;
});

/** Compiles the trainer's settings from the environment. */
export function loadTrainerConfig(env: NodeJS.ProcessEnv): TrainerConfig {
  const compiled = compileEnv(env, {
    FACEPRINT_MODEL_MIRROR: existingDirectory({ default: '' }),
    FACEPRINT_TRAINER_DATA_DIR: str({ default: '' }),
    FACEPRINT_TRAINER_PROMOTION_MARGIN: decimal(0, 1)({ default: 0.02 }),
    FACEPRINT_MATCHER_ADDRESS: str({ default: `127.0.0.1:${DEFAULT_GRPC_PORTS.matcher}` }),
  });
  return Object.freeze({
    registryRoot: registryRootFromEnv(env),
    mirrorDir: compiled.FACEPRINT_MODEL_MIRROR || undefined,
    dataDir: compiled.FACEPRINT_TRAINER_DATA_DIR ? fromInvocationDirectory(compiled.FACEPRINT_TRAINER_DATA_DIR) : DEFAULT_TRAINER_DIR,
    promotionMargin: compiled.FACEPRINT_TRAINER_PROMOTION_MARGIN,
    matcherAddress: compiled.FACEPRINT_MATCHER_ADDRESS,
  });
}
