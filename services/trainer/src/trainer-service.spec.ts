import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ModelTask, TrainerService } from '@faceprint/contracts/trainer';
import { MODEL_FILE, ModelRegistry } from '@faceprint/model-registry';
import { createClient, FaceprintError, loadServerConfig, startServer, type FaceprintServer, type ServiceClient } from '@faceprint/service-kit';
import { createLogger } from '@faceprint/telemetry';
import { MODEL_MIRROR, skipUnlessPresent } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { trainerService } from './trainer-service.js';

async function rejectsWith(call: Promise<unknown>, code: status, pattern?: RegExp): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof FaceprintError);
    assert.equal(status[error.code], status[code], error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe('TrainerService', { skip: skipUnlessPresent(MODEL_MIRROR) }, () => {
  let root: string;
  let server: FaceprintServer;
  let trainer: ServiceClient<typeof TrainerService>;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'faceprint-trainer-'));
    server = await startServer({
      config: loadServerConfig('trainer', { FACEPRINT_GRPC_PORT: '0' }),
      log: createLogger({ service: 'trainer', level: 'silent' }),
      services: trainerService({ registryRoot: root, mirrorDir: MODEL_MIRROR }),
    });
    trainer = createClient(TrainerService, server.address, { retry: false });
  });
  after(async () => {
    trainer.close();
    await server.shutdown();
    await rm(root, { recursive: true, force: true });
  });

  it('imports the default models through the rpc and lists them with their current versions', async () => {
    // A source that cannot be read fails the import and leaves the registry empty.
    await rejectsWith(trainer.importModel({ importer: 'yunet-n', mirrorDir: join(root, 'nowhere') }), status.FAILED_PRECONDITION, /import of yunet-n failed: model mirror: cannot read/);
    assert.deepEqual((await trainer.listModels({})).models, []);
    for (const importer of ['yunet-n', 'face-recognition-net', 'face-landmark-68']) {
      const { manifest, created } = await trainer.importModel({ importer, promoteIfFirst: true });
      assert.equal(created, true, importer);
      assert.equal(manifest?.model?.version, 1);
    }
    const { models } = await trainer.listModels({});
    assert.deepEqual(
      models.map((m) => [m.name, m.currentVersion, m.versions]),
      [
        ['face-landmark-68', 1, [1]],
        ['face-recognition-net', 1, [1]],
        ['yunet-n', 1, [1]],
      ],
    );
    const embedders = await trainer.listModels({ task: ModelTask.EMBEDDER });
    assert.deepEqual(embedders.models.map((m) => m.name), ['face-recognition-net']);
    const { manifest } = await trainer.getModelManifest({ name: 'face-recognition-net' });
    assert.equal(manifest?.embeddingDim, 128);
  });

  it('promotes atomically, and a watching reader sees the new version', async () => {
    // A second version of the landmark model: same weights, another producer line, another sha256.
    const registry = new ModelRegistry(root);
    const current = await registry.loadModel('face-landmark-68');
    const bytes = new Uint8Array([...current.bytes, 0x3a, 0x00]); // an unknown trailing field: still a valid model
    await registry.publish({ name: 'face-landmark-68', manifest: current.manifest, model: bytes });

    const seen: (number | undefined)[] = [];
    const stop = registry.watchCurrent('face-landmark-68', (version) => seen.push(version), { intervalMs: 20 });
    await sleep(60);
    const promoted = await trainer.promoteModel({ model: { name: 'face-landmark-68', version: 2 }, reason: 'test' });
    assert.equal(promoted.previous?.version, 1);
    assert.equal(promoted.current?.version, 2);
    assert.ok(promoted.gates.every((gate) => gate.passed));
    await sleep(100);
    stop();
    assert.deepEqual(seen, [1, 2]);
  });

  it('answers bad requests with clear statuses', async () => {
    await rejectsWith(trainer.importModel({ importer: 'no-such-model' }), status.INVALID_ARGUMENT, /unknown importer "no-such-model"; known: yunet-n/);
    await rejectsWith(trainer.promoteModel({ model: { name: 'yunet-n', version: 9 } }), status.NOT_FOUND, /yunet-n" version 9 not found/);
    await rejectsWith(trainer.getModelManifest({ name: 'nothing-here' }), status.NOT_FOUND, /has no current version/);
    await rejectsWith(trainer.promoteModel({}), status.INVALID_ARGUMENT, /model\.name: required; model\.version: required/);
  });

  it('refuses to promote a version whose file no longer matches its sha256', async () => {
    await writeFile(join(root, 'yunet-n', '1', MODEL_FILE), new Uint8Array([1, 2, 3]));
    await rejectsWith(trainer.promoteModel({ model: { name: 'yunet-n', version: 1 } }), status.DATA_LOSS, /sha256 [0-9a-f]{64} does not match/);
  });
});
