/** The trainer's own settings: where the registry is and where model sources may be mirrored. */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { registryRootFromEnv } from '@faceprint/model-registry';
import { compileEnv } from '@faceprint/service-kit';
import { makeValidator } from 'envalid';

/** The trainer's settings. */
export interface TrainerConfig {
  /** The registry root. `FACEPRINT_MODEL_REGISTRY`, default `<repo>/data/models`. */
  readonly registryRoot: string;
  /** A mirror of URL-sourced model files (shared/models layout); unset: download. `FACEPRINT_MODEL_MIRROR`. */
  readonly mirrorDir: string | undefined;
}

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
  });
  return Object.freeze({
    registryRoot: registryRootFromEnv(env),
    mirrorDir: compiled.FACEPRINT_MODEL_MIRROR || undefined,
  });
}
