import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { SERVICE_NAMES } from '@faceprint/contracts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaceService } from '@faceprint/contracts/gateway';
import { createClient } from '@faceprint/service-kit';
import { checkHealth, IDENTITIES_DIR, listServices, MODEL_MIRROR, rejectsWith, ServingStatus, skipUnlessPresent } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { MeshTls } from './mesh-tls.js';
import { REPO_ROOT } from './service-process.js';

// The README's main job. It binds the default ports 50050-50056 and 9460-9466.
describe('npm start (the local mesh)', { skip: skipUnlessPresent(MODEL_MIRROR) }, () => {
  it('builds the model registry, starts every service, reports the endpoints, and drains all of them on Ctrl-C', async () => {
    const registry = await mkdtemp(join(tmpdir(), 'faceprint-mesh-models-'));
    const gallery = await mkdtemp(join(tmpdir(), 'faceprint-mesh-gallery-'));
    const gatewayData = await mkdtemp(join(tmpdir(), 'faceprint-mesh-gateway-'));
    const tlsDir = await mkdtemp(join(tmpdir(), 'faceprint-mesh-tls-'));
    const env = { ...process.env, FACEPRINT_MODEL_REGISTRY: registry, FACEPRINT_MODEL_MIRROR: MODEL_MIRROR, FACEPRINT_MATCHER_DATA_DIR: gallery, FACEPRINT_GATEWAY_DATA_DIR: gatewayData, FACEPRINT_MESH_TLS_DIR: tlsDir };
    const mesh = spawn(process.execPath, ['--import', 'tsx', 'libs/mesh/src/main.ts'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    mesh.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    mesh.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(mesh, 'exit');
    const deadline = Date.now() + 120_000;
    while (!output.includes('faceprint mesh is SERVING')) {
      assert.ok(Date.now() < deadline && mesh.exitCode === null, `the mesh did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    // The gateway serves its public API on loopback; the others only callers with a mesh certificate.
    const asMesh = await new MeshTls(tlsDir).credentials('cli');
    for (const [name, port] of SERVICE_NAMES.map((n, i) => [n, 50050 + i] as const)) {
      assert.match(output, new RegExp(`${name}\\s+grpc 127\\.0\\.0\\.1:${port}`));
      if (name === 'gateway') {
        assert.equal(await checkHealth(`127.0.0.1:${port}`), ServingStatus.SERVING, name);
      } else {
        assert.equal(await checkHealth(`127.0.0.1:${port}`, '', asMesh), ServingStatus.SERVING, name);
        await rejectsWith(checkHealth(`127.0.0.1:${port}`), status.UNAVAILABLE); // refused at the TLS handshake
      }
    }
    assert.ok((await listServices('127.0.0.1:50050')).includes('faceprint.gateway.v1.FaceService'));
    // The first start made a development tenant; its operator key reaches the face API.
    const devKeys = JSON.parse(await readFile(join(gatewayData, 'dev-keys.json'), 'utf8')) as { tenant: string; operator: string; compliance: string };
    assert.equal(devKeys.tenant, 'dev');
    const faces = createClient(FaceService, '127.0.0.1:50050');
    const detected = await faces.detect({ image: { content: await readFile(join(IDENTITIES_DIR, 'amy', 'amy1.png')) } }, { metadata: { authorization: `Bearer ${devKeys.operator}` } });
    assert.equal(detected.faces.length, 1);
    faces.close();

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
    for (const model of ['yunet-n', 'face-recognition-net', 'face-landmark-68']) {
      assert.match(output, new RegExp(`${model}\\s+v1\\s+imported, promoted to current`));
    }
    await rm(registry, { recursive: true, force: true });
    await rm(gallery, { recursive: true, force: true });
    await rm(gatewayData, { recursive: true, force: true });
    await rm(`${gallery}-keys`, { recursive: true, force: true });
    await rm(tlsDir, { recursive: true, force: true });
  });
});
