/**
 * A model registry for tests: the default models imported into a temporary directory by the real
 * `npm run models` (URL-sourced files from the shared mirror), once per test process.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@faceprint/mesh';
import { MODEL_MIRROR } from './shared-data.js';

let built: Promise<string> | undefined;

/** The root of a registry holding yunet-n, face-recognition-net and face-landmark-68 (version 1, current). */
export function testModelRegistry(): Promise<string> {
  built ??= (async () => {
    const root = await mkdtemp(join(tmpdir(), 'faceprint-test-models-'));
    await promisify(execFile)(process.execPath, ['--import', 'tsx', 'services/trainer/src/build-models.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, FACEPRINT_MODEL_REGISTRY: root, FACEPRINT_MODEL_MIRROR: MODEL_MIRROR },
    });
    return root;
  })();
  return built;
}
