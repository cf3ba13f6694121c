/** Runs the `faceprint` command as a user would (the installed bin), for tests of its output and exit codes. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@faceprint/mesh';

const run = promisify(execFile);

/** Runs `faceprint args...` with `env` over this process's environment; its exit code and output. */
export async function runFaceprint(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(join(REPO_ROOT, 'node_modules/.bin/faceprint'), args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}
