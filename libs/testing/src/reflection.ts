/** Server reflection, queried with buf curl: a real, independent reflection client. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@faceprint/mesh';

const run = promisify(execFile);

/** The buf CLI installed by the repository's devDependencies. */
export const BUF = `${REPO_ROOT}node_modules/.bin/buf`;

/** The fully-qualified names of the services that `address` lists through reflection. */
export async function listServices(address: string): Promise<string[]> {
  const { stdout } = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-services', `http://${address}`]);
  return stdout.split('\n').filter(Boolean).sort();
}

/** Calls `method` (`package.Service/Method`) with a JSON request through reflection. */
export async function bufCurl(address: string, method: string, body: object): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout } = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '-d', JSON.stringify(body), `http://${address}/${method}`]);
    return { ok: true, output: stdout };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}
