import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@faceprint/mesh';
import { runFaceprint } from '@faceprint/testing';

const run = promisify(execFile);
const TRACE = { FACEPRINT_CLI_TRACE: '1' };

describe('the faceprint command bundle', () => {
  it('runs the bundle while it is current, prints what the sources print, and runs the sources once one changes', async () => {
    await run(process.execPath, [join(REPO_ROOT, 'libs/cli/scripts/build.mjs')], { cwd: REPO_ROOT });

    const bundled = await runFaceprint(['--help'], TRACE);
    assert.equal(bundled.code, 0);
    assert.match(bundled.stderr, /running the bundle/);
    const fromSource = await runFaceprint(['--help'], { ...TRACE, FACEPRINT_CLI_FROM_SOURCE: '1' });
    assert.match(fromSource.stderr, /running the TypeScript sources/);
    const usage = (output: string) => output.replace(/^faceprint: running .*\n/, '');
    assert.equal(usage(bundled.stderr), usage(fromSource.stderr));
    assert.match(usage(bundled.stderr), /faceprint keys create/);

    // Paths found relative to a source file still resolve in the repository: a missing receipt
    // is reported against the local mesh's default key, not a path next to the bundle.
    const receipt = await runFaceprint(['receipt', 'verify', join(REPO_ROOT, 'no-such-receipt.json')], TRACE);
    assert.equal(receipt.code, 2, receipt.stderr);
    assert.match(receipt.stderr, /running the bundle/);

    // A source edited after the build: the bundle is stale, so the sources run.
    const source = join(REPO_ROOT, 'libs/cli/src/usage.ts');
    const { atime, mtime } = await stat(source);
    try {
      await utimes(source, atime, new Date(Date.now() + 60_000));
      const stale = await runFaceprint(['--help'], TRACE);
      assert.equal(stale.code, 0);
      assert.match(stale.stderr, /running the TypeScript sources/);
    } finally {
      await utimes(source, atime, mtime);
    }
  });
});
