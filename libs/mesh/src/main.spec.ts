import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { SERVICE_NAMES } from '@faceprint/contracts';
import { checkHealth, listServices, ServingStatus } from '@faceprint/testing';
import { REPO_ROOT } from './service-process.js';

// The README's main job. It binds the default ports 50050-50055 and 9460-9465.
describe('npm start (the local mesh)', () => {
  it('starts every service, reports the endpoints, and drains all of them on Ctrl-C', async () => {
    const mesh = spawn(process.execPath, ['--import', 'tsx', 'libs/mesh/src/main.ts'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    mesh.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    mesh.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(mesh, 'exit');
    const deadline = Date.now() + 120_000;
    while (!output.includes('faceprint mesh is SERVING')) {
      assert.ok(Date.now() < deadline && mesh.exitCode === null, `the mesh did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    for (const [name, port] of SERVICE_NAMES.map((n, i) => [n, 50050 + i] as const)) {
      assert.match(output, new RegExp(`${name}\\s+grpc 127\\.0\\.0\\.1:${port}`));
      assert.equal(await checkHealth(`127.0.0.1:${port}`), ServingStatus.SERVING, name);
    }
    assert.ok((await listServices('127.0.0.1:50050')).includes('faceprint.gateway.v1.FaceService'));

    mesh.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, output);
    const stoppedServices = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { service?: string; msg?: string })
      .filter((line) => line.msg === 'stopped')
      .map((line) => line.service)
      .sort();
    assert.deepEqual(stoppedServices, [...SERVICE_NAMES].sort());
  });
});
