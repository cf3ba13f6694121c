/**
 * The project's shared data (../shared beside the repository: model mirror, test images,
 * datasets). CI always has it; a user's machine may not, and tests that need it skip there,
 * saying why. Under CI a missing directory fails the test instead of skipping it.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '@faceprint/mesh';

/** ../shared beside the repository. */
export const SHARED_DIR = resolve(REPO_ROOT, '..', 'shared');

/** The model mirror: FACEPRINT_MODEL_MIRROR, else ../shared/models. */
export const MODEL_MIRROR = process.env.FACEPRINT_MODEL_MIRROR || join(SHARED_DIR, 'models');

/** 8 people x 5 face crops (150x150 grayscale PNG): `<dir>/<name>/<name><1-5>.png`. */
export const IDENTITIES_DIR = join(SHARED_DIR, 'models', 'test-images', 'identities');

/**
 * For node:test's `skip` option: false when `path` exists, else the reason to skip. Throws under
 * CI, where the shared data must be present.
 */
export function skipUnlessPresent(path: string): false | string {
  if (existsSync(path)) return false;
  if (process.env.CI) throw new Error(`${path} is missing, and CI must have it`);
  return `needs ${path}, which is not on this machine`;
}
