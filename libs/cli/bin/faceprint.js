#!/usr/bin/env node
// The `faceprint` command. It runs the bundle that `npm ci` builds (libs/cli/scripts/build.mjs)
// while that bundle is as new as every source it was built from and sits where it was built;
// otherwise (a source edited since, no bundle) it runs the TypeScript sources through tsx.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI_DIR = fileURLToPath(new URL('..', import.meta.url));
const REPO_ROOT = join(CLI_DIR, '..', '..');

function bundleIsCurrent() {
  try {
    const { root, builtAt, inputs } = JSON.parse(readFileSync(join(CLI_DIR, 'dist', 'inputs.json'), 'utf8'));
    return root === REPO_ROOT && inputs.every((input) => statSync(join(REPO_ROOT, input)).mtimeMs < builtAt);
  } catch {
    return false; // no bundle, or a source gone
  }
}

// FACEPRINT_CLI_FROM_SOURCE=1 skips the bundle; FACEPRINT_CLI_TRACE=1 says which one runs.
const fromBundle = process.env.FACEPRINT_CLI_FROM_SOURCE !== '1' && bundleIsCurrent();
if (process.env.FACEPRINT_CLI_TRACE === '1') process.stderr.write(`faceprint: running ${fromBundle ? 'the bundle in libs/cli/dist' : 'the TypeScript sources'}\n`);
if (fromBundle) {
  await import('../dist/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
