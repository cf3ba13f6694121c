/**
 * The local mesh heals itself: a service killed with SIGKILL is started again on its port, the
 * gateway reports that it is not ready while a service it needs is down (and stays alive), and
 * what was acknowledged before a crash is there after it, for a kill of each service under load.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ConsentSchema, LegalBasis } from '@faceprint/contracts/common';
import { FaceService } from '@faceprint/contracts/gateway';
import { createClient, type ServiceClient } from '@faceprint/service-kit';
import { checkHealth, IDENTITIES_DIR, MODEL_MIRROR, ServingStatus, skipUnlessPresent, testModelRegistry, watchHealthUntil } from '@faceprint/testing';
import { startLocalMesh, type LocalMesh } from './local-mesh.js';

describe('the local mesh under a crash', { skip: skipUnlessPresent(MODEL_MIRROR) || skipUnlessPresent(IDENTITIES_DIR) }, () => {
  let root: string;
  let mesh: LocalMesh;
  let faces: ServiceClient<typeof FaceService>;
  let auth: { metadata: Record<string, string> };
  const lines: string[] = [];
  const saved = { ...process.env };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'faceprint-supervision-'));
    // The services inherit this environment.
    Object.assign(process.env, { FACEPRINT_MODEL_REGISTRY: await testModelRegistry(), FACEPRINT_MATCHER_DATA_DIR: join(root, 'gallery'), FACEPRINT_GATEWAY_DATA_DIR: join(root, 'gateway') });
    mesh = await startLocalMesh({ ports: 'free', tlsDir: join(root, 'tls'), onOutput: (line) => lines.push(line) });
    faces = createClient(FaceService, mesh.endpoints.gateway, { defaultTimeoutMs: 60_000 });
    const devKeys = JSON.parse(await readFile(join(root, 'gateway', 'dev-keys.json'), 'utf8')) as { operator: string };
    auth = { metadata: { authorization: `Bearer ${devKeys.operator}` } };
  });
  after(async () => {
    faces?.close();
    await mesh?.stop();
    process.env = saved;
    await rm(root, { recursive: true, force: true });
    await rm(`${join(root, 'gallery')}-keys`, { recursive: true, force: true });
  });

  it('restarts a killed matcher on its port; the gateway is not ready meanwhile, alive throughout, and nothing acknowledged is lost', async () => {
    const photo = (n: number) => readFile(join(IDENTITIES_DIR, 'amy', `amy${n}.png`));
    const consent = create(ConsentSchema, { legalBasis: LegalBasis.EXPLICIT_CONSENT, purpose: 'access_control', givenAt: timestampFromDate(new Date()), collectionPoint: 'supervision-test', retentionDays: 30 });
    await faces.enroll({ subjectId: 'amy', requestId: 'amy-before-crash', consent, images: await Promise.all([1, 2, 3, 4].map(async (n) => ({ image: { content: await photo(n) } }))) }, auth);
    // Each of those images made three downstream calls under the one enrolment call: no listener warning.
    assert.ok(!lines.some((line) => line.includes('MaxListenersExceededWarning')), lines.find((line) => line.includes('MaxListenersExceededWarning')));

    const readiness = watchHealthUntil(mesh.endpoints.gateway, (s) => s === ServingStatus.NOT_SERVING, 'faceprint.gateway.v1.FaceService', 30_000);
    const killed = mesh.pid('matcher');
    process.kill(killed, 'SIGKILL');
    assert.deepEqual((await readiness).at(-1), ServingStatus.NOT_SERVING, 'the gateway is not ready while the matcher is down');
    assert.equal(await checkHealth(mesh.endpoints.gateway), ServingStatus.SERVING, 'and stays alive');

    const ready = await watchHealthUntil(mesh.endpoints.gateway, (s) => s === ServingStatus.SERVING, 'faceprint.gateway.v1.FaceService', 60_000);
    assert.equal(ready.at(-1), ServingStatus.SERVING, 'ready again once the matcher is back');
    // The gateway can see the new matcher serving a moment before the supervisor's own start-up
    // check passes and it records the new process.
    for (const deadline = Date.now() + 15_000; mesh.pid('matcher') === killed && Date.now() < deadline; ) await sleep(100);
    assert.notEqual(mesh.pid('matcher'), killed, 'a new matcher process');
    assert.ok(lines.some((line) => /"supervised":"matcher".*matcher exited \(signal SIGKILL\); restarting/.test(line)), 'the exit is logged');
    assert.ok(lines.some((line) => /matcher restarted and serving/.test(line)));

    const found = await faces.identify({ image: { image: { content: await photo(5) } }, topK: 1 }, auth);
    assert.equal(found.candidates[0]?.subjectId, 'amy', 'the enrolment acknowledged before the crash is there');
  });

  it('loses no acknowledged enrolment while each service in turn is killed under load', async () => {
    const people = ['bernadette', 'howard', 'leonard', 'penny', 'raj', 'sheldon', 'stuart'];
    const photos = new Map(await Promise.all(people.map(async (name) => [name, await readFile(join(IDENTITIES_DIR, name, `${name}1.png`))] as const)));
    const consent = create(ConsentSchema, { legalBasis: LegalBasis.EXPLICIT_CONSENT, purpose: 'access_control', givenAt: timestampFromDate(new Date()), collectionPoint: 'supervision-test', retentionDays: 30 });
    const acknowledged: string[] = [];
    let refused = 0;
    let stop = false;
    // Two callers enrolling without pause: subject k of a person is that person's photo under a new id.
    const load = async (caller: number) => {
      for (let k = 0; !stop; k++) {
        const person = people[(k + caller) % people.length]!;
        const subjectId = `${person}-${caller}-${k}`;
        try {
          await faces.enroll({ subjectId, requestId: subjectId, consent, images: [{ image: { content: photos.get(person)! } }] }, { ...auth, timeoutMs: 20_000 });
          acknowledged.push(subjectId);
        } catch {
          refused += 1; // not acknowledged: the caller would retry
          await sleep(200);
        }
      }
    };
    const callers = [load(0), load(1)];
    for (const name of ['detector', 'aligner', 'embedder', 'matcher', 'gateway'] as const) {
      const before = acknowledged.length;
      while (acknowledged.length < before + 2) await sleep(100); // the mesh serves again between kills
      const pid = mesh.pid(name);
      process.kill(pid, 'SIGKILL');
      while (mesh.pid(name) === pid) await sleep(200);
    }
    const last = acknowledged.length;
    while (acknowledged.length < last + 2) await sleep(100);
    stop = true;
    await Promise.all(callers);
    assert.ok(refused > 0, 'calls were refused while services were down (the kills happened under load)');

    // Every acknowledged enrolment is in the gallery.
    const missing: string[] = [];
    for (const subjectId of acknowledged) {
      const person = subjectId.split('-')[0]!;
      const verified = await faces.verify({ subjectId, image: { image: { content: photos.get(person)! } } }, auth).catch((error: Error) => error);
      if (verified instanceof Error || !verified.decision?.isMatch) missing.push(`${subjectId}: ${verified instanceof Error ? verified.message : 'no match'}`);
    }
    assert.deepEqual(missing, [], `of ${acknowledged.length} acknowledged enrolments`);
  });
});
