/**
 * The product end to end: the local mesh as processes (detector, aligner, embedder, matcher on the
 * embedded gallery, gateway), driven only through the gateway's public API with API keys. The 8
 * shared identities are enrolled from 4 crops each and identified from the 5th; genuine and
 * impostor pairs get calibrated decisions; one subject is erased (and can no longer be matched),
 * another exported; the erasure receipt verifies; one tenant's key never reaches another's data.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyErasureReceipt } from '@faceprint/contracts';
import { AuditAction, AuditOutcome, ConsentSchema, ErasureReason, LegalBasis } from '@faceprint/contracts/common';
import { ApiKeyService as GatewayApiKeyService, ComplianceService, FaceService } from '@faceprint/contracts/gateway';
import { Health } from '@faceprint/contracts/health';
import { ComplianceService as MatcherComplianceService } from '@faceprint/contracts/matcher';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { startLocalMesh, waitForServiceProcess, type LocalMesh } from '@faceprint/mesh';
import { createClient, type ServiceClient } from '@faceprint/service-kit';
import { EmbedderService } from '@faceprint/contracts/embedder';
import { upperBound } from '@faceprint/evaluation';
import { ModelRegistry } from '@faceprint/model-registry';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDENTITIES_DIR, rejectsWith, runFaceprint, skipUnlessPresent, spawnService, testModelRegistry } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import sharp from 'sharp';
import { withKey, writeTestApiKeys } from './test-support.js';

const GROUP_PHOTO = join(IDENTITIES_DIR, '..', 'groups', 'bbt1.jpg');


describe('faceprint end to end through the gateway', { skip: skipUnlessPresent(IDENTITIES_DIR) }, () => {
  const keys = writeTestApiKeys([
    { id: 'acme-ops', tenant: 'acme', roles: ['operator'] },
    { id: 'acme-dpo', tenant: 'acme', roles: ['compliance'] },
    { id: 'globex-ops', tenant: 'globex', roles: ['operator'] },
    { id: 'acme-admin', tenant: 'acme', roles: ['admin'] },
  ]);
  const [ops, dpo, globex] = [withKey(keys.keys['acme-ops']!), withKey(keys.keys['acme-dpo']!), withKey(keys.keys['globex-ops']!)];
  const people: { name: string; images: Buffer[] }[] = [];
  const consent = create(ConsentSchema, { legalBasis: LegalBasis.EXPLICIT_CONSENT, purpose: 'access_control', givenAt: timestampFromDate(new Date()), collectionPoint: 'e2e-test', retentionDays: 30 });
  let galleryDir: string;
  let mesh: LocalMesh;
  let faces: ServiceClient<typeof FaceService>;
  let compliance: ServiceClient<typeof ComplianceService>;
  const image = (content: Buffer) => ({ image: { content } });

  before(async () => {
    for (const name of (await readdir(IDENTITIES_DIR)).sort()) {
      const files = (await readdir(join(IDENTITIES_DIR, name))).sort();
      people.push({ name, images: await Promise.all(files.map((f) => readFile(join(IDENTITIES_DIR, name, f)))) });
    }
    galleryDir = await mkdtemp(join(tmpdir(), 'faceprint-e2e-gallery-'));
    // The services inherit this environment: the test registry, a fresh gallery, the test's API keys.
    // The background re-embedder looks every second (the last test promotes new embedder versions).
    Object.assign(process.env, { FACEPRINT_MODEL_REGISTRY: await testModelRegistry(), FACEPRINT_MATCHER_DATA_DIR: galleryDir, FACEPRINT_GATEWAY_API_KEYS_FILE: keys.file, FACEPRINT_MATCHER_REEMBED_INTERVAL_MS: '1000' });
    // On free ports: a mesh already running here (npm start) must not fail the tests, nor they it.
    mesh = await startLocalMesh({ ports: 'free', tlsDir: `${galleryDir}-tls` });
    process.env.FACEPRINT_TARGET = mesh.endpoints.gateway; // where the faceprint command finds it
    faces = createClient(FaceService, mesh.endpoints.gateway, { defaultTimeoutMs: 60_000 });
    compliance = createClient(ComplianceService, mesh.endpoints.gateway);
  });
  after(async () => {
    faces?.close();
    compliance?.close();
    await mesh?.stop();
    await rm(galleryDir, { recursive: true, force: true });
    await rm(`${galleryDir}-keys`, { recursive: true, force: true });
    await rm(`${galleryDir}-tls`, { recursive: true, force: true });
  });

  it('enrols 8 people from 4 crops each and identifies each from the 5th (rank-1 8/8)', async () => {
    let embedderVersion = 0;
    for (const person of people) {
      const enrolled = await faces.enroll({ requestId: `enrol-${person.name}`, subjectId: person.name, images: person.images.slice(0, 4).map(image), consent }, ops);
      assert.equal(enrolled.templateIds.length, 4, person.name);
      assert.equal(enrolled.models?.embedder?.name, 'face-recognition-net');
      embedderVersion = enrolled.models?.embedder?.version ?? 0;
      assert.ok(enrolled.timings.some((t) => t.service === 'embedder') && enrolled.timings.some((t) => t.service === 'gateway'), 'per-stage timings');
      assert.equal(enrolled.consistency?.flagged, false, `${person.name}'s 4 photos agree: ${JSON.stringify(enrolled.consistency?.templates.map((t) => t.bestScore))}`);
    }
    // Two people's photos sent as one subject are flagged, with the scores.
    const [raj, amy] = [people.find((p) => p.name === 'raj')!, people.find((p) => p.name === 'amy')!];
    const mixed = await faces.enroll({ requestId: 'enrol-mixed', subjectId: 'mixed-up', images: [image(raj.images[0]!), image(amy.images[0]!)], consent }, ops);
    assert.equal(mixed.consistency?.flagged, true, JSON.stringify(mixed.consistency));
    assert.ok(mixed.consistency.templates.every((t) => t.bestScore < mixed.consistency!.threshold));
    await compliance.eraseSubject({ subjectId: 'mixed-up', requestRef: 'test-cleanup', reason: ErasureReason.OPERATOR }, dpo);
    // A retry of an enrolment is its stored result, not a second enrolment.
    const retried = await faces.enroll({ requestId: `enrol-${people[0]!.name}`, subjectId: people[0]!.name, images: people[0]!.images.slice(0, 4).map(image), consent }, ops);
    assert.equal(retried.replayed, true);
    assert.equal(retried.templateCount, 4);

    let rankOne = 0;
    for (const person of people) {
      const found = await faces.identify({ image: image(person.images[4]!), topK: 3 }, ops);
      if (found.candidates[0]?.subjectId === person.name) rankOne++;
    }
    assert.equal(rankOne, 8);
    // Every subject holds templates of the serving (current) model: nobody to re-enrol.
    const gallery = await faces.getGalleryStatus({}, ops);
    assert.deepEqual(
      gallery.versions.map((v) => [v.model?.name, v.model?.version, v.subjects, v.templates, v.current]),
      [['face-recognition-net', embedderVersion, 8, 32, true]],
    );
    assert.deepEqual([gallery.subjects, gallery.subjectsNeedingReenrolment], [8, 0]);
  });

  it('verifies genuine and impostor pairs with calibrated decisions', async (t) => {
    let genuineMatches = 0;
    let impostorMatches = 0;
    for (const [i, person] of people.entries()) {
      const genuine = await faces.verify({ subjectId: person.name, image: image(person.images[4]!), targetFar: 1e-3 }, ops);
      assert.equal(genuine.decision?.targetFar, 1e-3);
      assert.ok(genuine.decision.threshold > 0.9, 'the shipped calibrated threshold');
      // Four templates: each held to the threshold shipped for 1e-3 / 4 (3,023 false matches in
      // 12,095,190 impostor comparisons), and the decision's bound four times that one's.
      assert.equal(genuine.decision.templatesCompared, 4);
      assert.equal(genuine.decision.calibrationImpostorPairs, 12_095_190n);
      assert.ok(Math.abs(genuine.decision.farUpper95 - 4 * upperBound(3_023, 12_095_190)) < 1e-12 && genuine.decision.farUpper95 > 1e-3, String(genuine.decision.farUpper95));
      if (genuine.decision?.isMatch) genuineMatches++;
      const other = people[(i + 1) % people.length]!;
      const impostor = await faces.verify({ subjectId: other.name, image: image(person.images[4]!), targetFar: 1e-3 }, ops);
      if (impostor.decision?.isMatch) impostorMatches++;
    }
    t.diagnostic(`at FAR 1e-3: genuine pairs matched ${genuineMatches}/8, impostor pairs matched ${impostorMatches}/8`);
    assert.ok(genuineMatches >= 7, `genuine pairs matched: ${genuineMatches}/8`);
    assert.equal(impostorMatches, 0);
    const compared = await faces.compare({ first: image(people[1]!.images[0]!), second: image(people[1]!.images[4]!), targetFar: 1e-3 }, ops);
    assert.ok(compared.decision!.score > 0.9);
  });

  it('answers bad input, missing keys and wrong roles with clear statuses', async () => {
    await rejectsWith(faces.identify({ image: image(await readFile(GROUP_PHOTO)) }, ops), status.INVALID_ARGUMENT, /image.face_region: the image holds \d+ faces/);
    await rejectsWith(faces.identify({ image: image(Buffer.from('not an image')) }, ops), status.INVALID_ARGUMENT, /image\.image/);
    // The two images of a compare are embedded at the same time; with both refused, the first in
    // request order is reported, although 'not an image' fails long before the group photo's faces are counted.
    await rejectsWith(faces.compare({ first: image(await readFile(GROUP_PHOTO)), second: image(Buffer.from('not an image')) }, ops), status.INVALID_ARGUMENT, /^first\.face_region: the image holds \d+ faces/);
    await rejectsWith(faces.identify({ image: image(people[0]!.images[0]!) }), status.UNAUTHENTICATED, /API key is required/);
    await rejectsWith(faces.identify({ image: image(people[0]!.images[0]!) }, withKey('fpk_forged')), status.UNAUTHENTICATED, /not valid/);
    await rejectsWith(faces.identify({ image: image(people[0]!.images[0]!) }, { metadata: { authorization: `Bearer Bearer ${keys.keys['acme-ops']!}` } }), status.UNAUTHENTICATED, /authorization metadata is not valid: it must be "Bearer <key>"/);
    await rejectsWith(faces.identify({ image: image(people[0]!.images[0]!) }, dpo), status.PERMISSION_DENIED, /"operator" role/);
    await rejectsWith(compliance.exportSubject({ subjectId: people[0]!.name, requestRef: 'SAR-1' }, ops), status.PERMISSION_DENIED, /"compliance" role/);
    await rejectsWith(faces.verify({ subjectId: 'nobody', image: image(people[0]!.images[0]!) }, ops), status.NOT_FOUND, /nobody/);

    // The minimum face size, sharpness and quality are settings: gateways that demand more refuse
    // the same crop (for quality: a darkened copy, while the crop itself still passes).
    const downstream = { FACEPRINT_DETECTOR_ADDRESS: mesh.endpoints.detector, FACEPRINT_ALIGNER_ADDRESS: mesh.endpoints.aligner, FACEPRINT_EMBEDDER_ADDRESS: mesh.endpoints.embedder, FACEPRINT_MATCHER_ADDRESS: mesh.endpoints.matcher, FACEPRINT_LIVENESS_ADDRESS: mesh.endpoints.liveness };
    const crop = people[0]!.images[0]!;
    const darkened = await sharp(crop).linear(0.12, 0).png().toBuffer();
    const strictness = [
      [{ FACEPRINT_GATEWAY_MIN_FACE_SIZE: '5000' }, /image.image: the face is \d+ px, smaller than the 5000 px required/, crop],
      [{ FACEPRINT_GATEWAY_MIN_SHARPNESS: '1000000000' }, /image.image: the face is too blurred/, crop],
      [{ FACEPRINT_GATEWAY_MIN_QUALITY: '50' }, /image.image: the face's quality is \d+, below the 50 required; what lowers it most: (exposure|luminance_mean|sharpness) [\d.]+ \(no loss /, darkened],
    ] as const;
    for (const [setting, refusal, refused] of strictness) {
      const strict = await spawnService('gateway', { ...downstream, ...mesh.tls.serviceEnv('gateway'), ...setting, FACEPRINT_GATEWAY_API_KEYS_FILE: keys.file, FACEPRINT_GRPC_PORT: '0', FACEPRINT_METRICS_PORT: '0' });
      const client = createClient(FaceService, strict.address, { retry: false });
      try {
        await waitForServiceProcess(strict, Date.now() + 30_000);
        await rejectsWith(client.identify({ image: image(refused) }, ops), status.INVALID_ARGUMENT, refusal);
        if (refused !== crop) assert.ok((await client.identify({ image: image(crop) }, ops)).candidates.length > 0, 'the crop itself passes');
      } finally {
        client.close();
        await strict.stop();
      }
    }
  });

  it('keeps the services behind the gateway to the mesh: no call without a mesh certificate, caller context from the gateway only', async () => {
    // A local process without a certificate is refused at the TLS handshake.
    for (const name of ['detector', 'aligner', 'embedder', 'matcher', 'trainer'] as const) {
      const plain = createClient(Health, mesh.endpoints[name], { retry: false, defaultTimeoutMs: 5_000 });
      await rejectsWith(plain.check({}), status.UNAVAILABLE);
      plain.close();
    }
    // What was done by hand before: a forged compliance context straight to the matcher, asking for vectors.
    const forged = { context: { tenantId: 'acme', callerId: 'intruder', roles: ['compliance'] }, subjectId: people[0]!.name, requestRef: 'forged', includeVectors: true };
    for (const identity of ['trainer', 'cli'] as const) {
      const matcher = createClient(MatcherComplianceService, mesh.endpoints.matcher, { retry: false, credentials: await mesh.tls.credentials(identity) });
      await rejectsWith(matcher.exportSubject(forged), status.PERMISSION_DENIED, new RegExp(`accepts calls only from gateway; this caller's certificate names ${identity}`));
      matcher.close();
    }
    // The gateway's certificate is let in (the subject is unknown here: NOT_FOUND, not PERMISSION_DENIED).
    const asGateway = createClient(MatcherComplianceService, mesh.endpoints.matcher, { retry: false, credentials: await mesh.tls.credentials('gateway') });
    await rejectsWith(asGateway.exportSubject({ ...forged, subjectId: 'nobody-here' }), status.NOT_FOUND);
    asGateway.close();
  });

  it('keeps tenants apart: another tenant’s key finds nothing of this gallery', async () => {
    const probe = image(people[2]!.images[4]!);
    assert.deepEqual((await faces.identify({ image: probe }, globex)).candidates, []);
    await rejectsWith(faces.verify({ subjectId: people[2]!.name, image: probe }, globex), status.NOT_FOUND, new RegExp(people[2]!.name));
  });

  it('erases one subject (who can then no longer be matched) with a receipt that verifies, and exports another', async () => {
    const erased = people[3]!;
    const { receipt } = await compliance.eraseSubject({ subjectId: erased.name, requestRef: 'DSR-77', reason: ErasureReason.SUBJECT_REQUEST }, dpo);
    assert.deepEqual(Object.fromEntries(receipt!.counts.map((c) => [c.kind, Number(c.count)])).template, 4);
    const publicKey = await readFile(join(`${galleryDir}-keys`, 'receipt-signing.pub.pem'), 'utf8');
    assert.equal(verifyErasureReceipt(receipt!, publicKey).valid, true);
    const after = await faces.identify({ image: image(erased.images[4]!), topK: 8 }, ops);
    assert.ok(after.candidates.every((c) => c.subjectId !== erased.name));
    await rejectsWith(faces.verify({ subjectId: erased.name, image: image(erased.images[4]!) }, ops), status.NOT_FOUND, new RegExp(erased.name));

    const exported = await compliance.exportSubject({ subjectId: people[5]!.name, requestRef: 'SAR-78' }, dpo);
    const document = JSON.parse(new TextDecoder().decode(exported.document)) as { subject_id: string; templates: unknown[]; audit_events: { action: string }[] };
    assert.equal(document.subject_id, people[5]!.name);
    assert.equal(document.templates.length, 4);
    assert.ok(document.audit_events.some((e) => e.action === 'ENROLL') && document.audit_events.some((e) => e.action === 'VERIFY'));
  });

  it('drives the same through the faceprint command, with the exit codes scripts rely on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-e2e-cli-'));
    try {
      const person = people[6]!;
      const files = await Promise.all(person.images.map(async (bytes, i) => {
        const file = join(dir, `${person.name}-${i + 1}.png`);
        await writeFile(file, bytes);
        return file;
      }));
      const operatorKey = { FACEPRINT_API_KEY: keys.keys['acme-ops']! };
      const complianceKey = { FACEPRINT_API_KEY: keys.keys['acme-dpo']! };

      const enrolled = await runFaceprint(['enroll', '--subject', 'cli-subject', '--json', ...files.slice(0, 3)], operatorKey);
      assert.equal(enrolled.code, 0, enrolled.stderr);
      assert.equal((JSON.parse(enrolled.stdout) as { template_ids: string[] }).template_ids.length, 3);
      const again = await runFaceprint(['enroll', '--subject', 'cli-subject', '--json', ...files.slice(0, 3)], operatorKey);
      assert.equal((JSON.parse(again.stdout) as { replayed: boolean }).replayed, true, 'the same command again is a replay');

      const verified = await runFaceprint(['verify', '--subject', 'cli-subject', files[4]!, '--far', '1e-3', '--json'], operatorKey);
      assert.equal(verified.code, 0, verified.stderr);
      const decision = JSON.parse(verified.stdout) as { match: boolean; score: number; threshold: number; far: number; far_upper_95: number; calibration_impostor_pairs: number; templates_compared: number; model: string; face_quality: { unified_score: number; inter_eye_distance: number }; decision_record: { signedPayload: string } };
      assert.deepEqual(Object.keys(decision).sort(), ['calibration_impostor_pairs', 'decision_record', 'face_quality', 'far', 'far_upper_95', 'match', 'model', 'score', 'templates_compared', 'threshold']);
      // The signed decision record: what was decided on which evidence, never the image or a template; it verifies offline, and one changed byte does not.
      const signedText = Buffer.from(decision.decision_record.signedPayload, 'base64').toString('utf8');
      const record = JSON.parse(signedText) as { type: string; subject_pseudonym: string; probe_image_sha256: string[]; models: { detector: { sha256: string }; embedder: { sha256: string } }; decision: string; score: number; templates_compared: number };
      assert.equal(record.type, 'faceprint.decision_record.v2');
      // The subject by its audit pseudonym, never its id: after an erasure the record ties to no one.
      assert.match(record.subject_pseudonym, /^pseudonym:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.ok(!signedText.includes('cli-subject'));
      assert.deepEqual([record.decision, record.templates_compared, record.score], [decision.match ? 'match' : 'no_match', 3, decision.score]);
      assert.deepEqual(record.probe_image_sha256, [createHash('sha256').update(await readFile(files[4]!)).digest('hex')]);
      assert.match(record.models.detector.sha256 + record.models.embedder.sha256, /^[0-9a-f]{128}$/);
      const recordFile = join(dir, 'decision.json');
      await writeFile(recordFile, verified.stdout);
      // The keys as a verifier gets them: from the gateway (GetPublicKeys), one PEM file.
      const keysFile = join(dir, 'signing-keys.pem');
      const fetched = await runFaceprint(['receipt', 'keys', '--out', keysFile, '--json'], operatorKey);
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.equal((JSON.parse(fetched.stdout) as { keys: { active: boolean }[] }).keys.filter((k) => k.active).length, 1);
      assert.equal(await readFile(keysFile, 'utf8').then((pem) => pem.includes('BEGIN PUBLIC KEY')), true);
      const publicKeyArgs = ['--public-key', keysFile];
      const recordChecked = await runFaceprint(['receipt', 'verify', recordFile, ...publicKeyArgs], {});
      assert.equal(recordChecked.code, 0, recordChecked.stdout + recordChecked.stderr);
      assert.match(recordChecked.stdout, new RegExp(`valid: (match|no_match) for subject ${record.subject_pseudonym}`));
      const tamperedPayload = Buffer.from(decision.decision_record.signedPayload, 'base64');
      const digit = tamperedPayload.indexOf('"score":') + 10; // the score's first decimal: another digit, still JSON
      tamperedPayload.writeUInt8(tamperedPayload.readUInt8(digit) ^ 1, digit);
      await writeFile(recordFile, JSON.stringify({ ...decision, decision_record: { ...decision.decision_record, signedPayload: tamperedPayload.toString('base64') } }));
      const tamperedChecked = await runFaceprint(['receipt', 'verify', recordFile, ...publicKeyArgs], {});
      assert.equal(tamperedChecked.code, 1, tamperedChecked.stdout + tamperedChecked.stderr);
      assert.match(tamperedChecked.stdout, /NOT valid:\n {2}- the signature does not match/);
      assert.ok(decision.face_quality.unified_score > 0 && decision.face_quality.inter_eye_distance > 10, JSON.stringify(decision.face_quality));
      assert.equal(decision.far, 1e-3);
      // Three templates enrolled: each at the threshold of 1e-3 / 3 (4,031 false matches when calibrated).
      assert.deepEqual([decision.calibration_impostor_pairs, decision.templates_compared], [12_095_190, 3]);
      assert.ok(Math.abs(decision.far_upper_95 - 3 * upperBound(4_031, 12_095_190)) < 1e-12, String(decision.far_upper_95));
      assert.match(decision.model, /^face-recognition-net@1$/);

      const compared = await runFaceprint(['compare', files[0]!, files[4]!, '--json'], operatorKey);
      assert.equal(compared.code, 0, compared.stderr);
      assert.ok((JSON.parse(compared.stdout) as { score: number }).score > 0.9);
      assert.equal((JSON.parse(compared.stdout) as { decision_record?: unknown }).decision_record, undefined, 'signed only when asked');
      // Asked for, a compare's decision is signed too: the digests of both images, no subject.
      const signedCompare = await runFaceprint(['compare', files[0]!, files[4]!, '--sign', '--json'], operatorKey);
      assert.equal(signedCompare.code, 0, signedCompare.stderr);
      const compareRecord = JSON.parse(Buffer.from((JSON.parse(signedCompare.stdout) as { decision_record: { signedPayload: string } }).decision_record.signedPayload, 'base64').toString('utf8')) as { decision_of: string; subject_pseudonym?: string; probe_image_sha256: string[] };
      assert.deepEqual([compareRecord.decision_of, compareRecord.subject_pseudonym, compareRecord.probe_image_sha256.length], ['compare', undefined, 2]);
      const compareFile = join(dir, 'compare.json');
      await writeFile(compareFile, signedCompare.stdout);
      const compareChecked = await runFaceprint(['receipt', 'verify', compareFile, ...publicKeyArgs], {});
      assert.equal(compareChecked.code, 0, compareChecked.stdout + compareChecked.stderr);
      assert.match(compareChecked.stdout, /valid: (match|no_match) comparing two images/);

      const identified = await runFaceprint(['identify', files[4]!, '--top', '3', '--json'], operatorKey);
      const candidates = (JSON.parse(identified.stdout) as { candidates: { subject: string; score: number; match: boolean }[] }).candidates;
      assert.ok([person.name, 'cli-subject'].includes(candidates[0]!.subject), JSON.stringify(candidates));

      const status = JSON.parse((await runFaceprint(['gallery', 'status', '--json'], operatorKey)).stdout) as { subjects: number; subjects_needing_reenrolment: number; versions: { current: boolean }[] };
      assert.ok(status.subjects >= 1 && status.subjects_needing_reenrolment === 0 && status.versions.every((v) => v.current), JSON.stringify(status));

      const drawn = join(dir, 'faces.png');
      const detected = await runFaceprint(['detect', GROUP_PHOTO, '--out', drawn, '--json'], operatorKey);
      const groupFaces = (JSON.parse(detected.stdout) as { faces: { box: { x: number; y: number; width: number; height: number } }[] }).faces;
      assert.ok(groupFaces.length > 1);
      assert.ok((await readFile(drawn)).subarray(1, 4).equals(Buffer.from('PNG')));
      // A group photo is no dead end: --face-region picks one of its faces (as detect listed them).
      const several = await runFaceprint(['identify', GROUP_PHOTO], operatorKey);
      assert.equal(several.code, 2, 'several faces, no region');
      assert.equal(several.stderr.match(/image\.face_region: the image holds \d+ faces/g)?.length, 1, `said once: ${several.stderr}`);
      const box = groupFaces[0]!.box;
      const picked = await runFaceprint(['identify', GROUP_PHOTO, '--face-region', [box.x, box.y, box.width, box.height].map((n) => n.toFixed(0)).join(','), '--json'], operatorKey);
      assert.equal(picked.code, 0, picked.stderr);
      const badRegion = await runFaceprint(['identify', GROUP_PHOTO, '--face-region', '10,10,-5,20'], operatorKey);
      assert.equal(badRegion.code, 2);
      assert.match(badRegion.stderr, /--face-region must be X,Y,WIDTH,HEIGHT/);

      const erased = await runFaceprint(['erase', '--subject', 'cli-subject', '--request-ref', 'DSR-CLI-1', '--json'], complianceKey);
      assert.equal(erased.code, 0, erased.stderr);
      const receiptFile = join(dir, 'receipt.json');
      await writeFile(receiptFile, erased.stdout);
      const checked = await runFaceprint(['receipt', 'verify', receiptFile, '--public-key', join(`${galleryDir}-keys`, 'receipt-signing.pub.pem')], {});
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);
      assert.match(checked.stdout, /valid: subject "cli-subject"/);

      const exported = await runFaceprint(['export', '--subject', person.name, '--json'], complianceKey);
      assert.equal((JSON.parse(exported.stdout) as { subject_id: string }).subject_id, person.name);

      // Exit codes: 3 not found, 4 permission denied, 2 bad input.
      assert.equal((await runFaceprint(['verify', '--subject', 'cli-subject', files[4]!], operatorKey)).code, 3);
      assert.equal((await runFaceprint(['export', '--subject', person.name], operatorKey)).code, 4);
      assert.equal((await runFaceprint(['identify', join(dir, 'receipt.json')], operatorKey)).code, 2);
      assert.equal((await runFaceprint(['verify', files[4]!], operatorKey)).code, 2, 'no --subject');
      assert.equal((await runFaceprint(['verify', '--subject', 'x', '--bogus', files[4]!], operatorKey)).code, 2, 'an unknown flag');
      // Files that cannot be sent: each a usage error that says why, printed once.
      const huge = join(dir, 'huge.jpg');
      await writeFile(huge, Buffer.concat([await readFile(files[4]!), Buffer.alloc(11 * 1024 * 1024)]));
      for (const [path, why] of [[join(dir, 'missing.jpg'), /missing\.jpg: no such file/], [dir, /is a directory: name image files/], [huge, /huge\.jpg is \d+ bytes; an image may be at most 10485760 bytes \(10 MiB\)/]] as const) {
        const refused = await runFaceprint(['identify', path], operatorKey);
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(refused.stderr, why);
        assert.equal(refused.stderr.split('\n').filter((line) => line.startsWith('faceprint:')).length, 1, refused.stderr);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lets an admin make, rotate and revoke API keys that every call then honours, each change audited', async () => {
    const admin = withKey(keys.keys['acme-admin']!);
    const apiKeys = createClient(GatewayApiKeyService, mesh.endpoints.gateway);
    try {
      await rejectsWith(apiKeys.createApiKey({ keyId: 'svc-1', roles: ['operator'] }, ops), status.PERMISSION_DENIED, /"admin" role/);
      await rejectsWith(apiKeys.createApiKey({ keyId: 'svc 1', roles: ['operator'] }, admin), status.INVALID_ARGUMENT, /key_id/);
      await rejectsWith(apiKeys.createApiKey({ keyId: 'svc-1', roles: ['root'] }, admin), status.INVALID_ARGUMENT, /roles/);
      await rejectsWith(apiKeys.createApiKey({ keyId: 'acme-ops', roles: ['operator'] }, admin), status.ALREADY_EXISTS, /keys file/);
      const made = await apiKeys.createApiKey({ keyId: 'svc-1', roles: ['operator'] }, admin);
      assert.match(made.secret, /^fpk_/);
      assert.deepEqual([made.key?.keyId, made.key?.tenantId, made.key?.roles, made.key?.createdBy], ['svc-1', 'acme', ['operator'], 'acme-admin']);
      await rejectsWith(apiKeys.createApiKey({ keyId: 'svc-1', roles: ['operator'] }, admin), status.ALREADY_EXISTS, /already has an API key "svc-1"/);

      // The new key works at once, as its own caller, and its use is recorded.
      const first = withKey(made.secret);
      await faces.getGalleryStatus({}, first);
      await rejectsWith(compliance.exportSubject({ subjectId: people[0]!.name, requestRef: 'SAR-9' }, first), status.PERMISSION_DENIED, /"compliance" role/);
      const all = (await apiKeys.listApiKeys({}, admin)).keys;
      const listed = all.find((k) => k.keyId === 'svc-1');
      assert.ok(listed?.lastUseTime, 'last use recorded');
      assert.equal(listed.fromKeysFile, false);
      // The keys file's keys are listed too, marked, and changed only there.
      const fileKey = all.find((k) => k.keyId === 'acme-ops');
      assert.deepEqual([fileKey?.fromKeysFile, fileKey?.roles], [true, ['operator']], JSON.stringify(all.map((k) => k.keyId)));
      await rejectsWith(apiKeys.revokeApiKey({ keyId: 'acme-ops' }, admin), status.FAILED_PRECONDITION, /keys file.*FACEPRINT_GATEWAY_API_KEYS_FILE/);
      await rejectsWith(apiKeys.rotateApiKey({ keyId: 'acme-ops' }, admin), status.FAILED_PRECONDITION, /keys file/);

      // Rotation without grace: the old secret stops at once; with grace it keeps working.
      const rotated = await apiKeys.rotateApiKey({ keyId: 'svc-1' }, admin);
      await rejectsWith(faces.getGalleryStatus({}, first), status.UNAUTHENTICATED, /not valid/);
      const second = withKey(rotated.secret);
      await faces.getGalleryStatus({}, second);
      const graced = await apiKeys.rotateApiKey({ keyId: 'svc-1', graceSeconds: 3600 }, admin);
      assert.ok(graced.key?.previousSecretExpireTime);
      await faces.getGalleryStatus({}, second);
      await faces.getGalleryStatus({}, withKey(graced.secret));
      await rejectsWith(apiKeys.rotateApiKey({ keyId: 'svc-1', graceSeconds: 99_999_999 }, admin), status.INVALID_ARGUMENT, /grace_seconds/);

      // Revocation: no secret of the key works again; revoking again changes nothing.
      const revoked = await apiKeys.revokeApiKey({ keyId: 'svc-1' }, admin);
      for (const key of [second, withKey(graced.secret)]) await rejectsWith(faces.getGalleryStatus({}, key), status.UNAUTHENTICATED, /not valid/);
      const again = await apiKeys.revokeApiKey({ keyId: 'svc-1' }, admin);
      assert.deepEqual(again.key?.revokeTime, revoked.key?.revokeTime);
      await rejectsWith(apiKeys.rotateApiKey({ keyId: 'svc-1' }, admin), status.NOT_FOUND, /svc-1/);
      await rejectsWith(apiKeys.revokeApiKey({ keyId: 'nobody' }, admin), status.NOT_FOUND, /nobody/);
      // Another tenant's gateway calls cannot see acme's keys.
      await rejectsWith(apiKeys.listApiKeys({}, globex), status.PERMISSION_DENIED, /"admin" role/);

      // Each change is in the audit trail, by the admin who made it.
      const audit = await compliance.listAuditEvents({ actions: [AuditAction.API_KEY_CREATE, AuditAction.API_KEY_ROTATE, AuditAction.API_KEY_REVOKE] }, dpo);
      const changes = audit.events.filter((e) => e.details.key_id === 'svc-1' && e.outcome === AuditOutcome.SUCCESS).map((e) => [AuditAction[e.action], e.actor]).reverse();
      assert.deepEqual(changes, [['API_KEY_CREATE', 'acme-admin'], ['API_KEY_ROTATE', 'acme-admin'], ['API_KEY_ROTATE', 'acme-admin'], ['API_KEY_REVOKE', 'acme-admin'], ['API_KEY_REVOKE', 'acme-admin']]);

      // The same through the faceprint command.
      const adminKey = { FACEPRINT_API_KEY: keys.keys['acme-admin']! };
      const created = await runFaceprint(['keys', 'create', '--id', 'cli-key', '--roles', 'operator', '--json'], adminKey);
      assert.equal(created.code, 0, created.stderr);
      const secret = (JSON.parse(created.stdout) as { secret: string }).secret;
      assert.equal((await runFaceprint(['gallery', 'status', '--json'], { FACEPRINT_API_KEY: secret })).code, 0);
      const list = JSON.parse((await runFaceprint(['keys', 'list', '--json'], adminKey)).stdout) as { keys: { key_id: string; last_used: string }[] };
      assert.ok(list.keys.find((k) => k.key_id === 'cli-key')?.last_used, JSON.stringify(list));
      assert.equal((await runFaceprint(['keys', 'revoke', '--id', 'cli-key'], adminKey)).code, 0);
      assert.equal((await runFaceprint(['gallery', 'status'], { FACEPRINT_API_KEY: secret })).code, 4, 'a revoked key: no valid key');
      assert.equal((await runFaceprint(['keys', 'create', '--id', 'x', '--roles', 'operator'], { FACEPRINT_API_KEY: keys.keys['acme-ops']! })).code, 4, 'not an admin');
      assert.equal((await runFaceprint(['keys', 'create', '--id', 'x'], adminKey)).code, 2, 'no --roles');
    } finally {
      apiKeys.close();
    }
  });

  // Last in this file: it promotes a new embedder version in the mesh's registry.
  it('after a model promotion, re-creates from kept crops the templates of subjects who allowed it; the others are reported', async () => {
    const [keeper, plain] = [people[2]!, people[3]!];
    await faces.enroll({ requestId: 'keep-1', subjectId: 'keeper', images: keeper.images.slice(0, 2).map(image), consent: { ...consent, retainAlignedCrops: true } }, globex);
    await faces.enroll({ requestId: 'plain-1', subjectId: 'plain', images: plain.images.slice(0, 1).map(image), consent }, globex);
    const galleryStatus = async () => {
      const s = await faces.getGalleryStatus({}, globex);
      return { versions: s.versions.map((v) => [v.model?.version, v.subjects, v.templates, v.current]), behind: s.subjectsNeedingReenrolment };
    };
    assert.deepEqual(await galleryStatus(), { versions: [[1, 2, 3, true]], behind: 0 });

    // A new version of the embedder (the same network in a different file, with its calibration) is promoted.
    const registry = new ModelRegistry(process.env.FACEPRINT_MODEL_REGISTRY!);
    const promote = async (trailer: number) => {
      const current = await registry.loadModel('face-recognition-net');
      const { manifest } = await registry.publish({ name: 'face-recognition-net', manifest: current.manifest, model: new Uint8Array([...current.bytes, 0x32, 0x01, 0x40 + trailer]) }); // + a doc_string: another file, the same network
      await registry.promote('face-recognition-net', manifest.model!.version);
      const embedder = createClient(EmbedderService, mesh.endpoints.embedder, { credentials: await mesh.tls.credentials('cli') });
      const deadline = Date.now() + 60_000;
      const serving = async () => (await embedder.modelStatus({})).serving?.version;
      while ((await serving()) !== manifest.model!.version && Date.now() < deadline) await sleep(200);
      assert.equal(await serving(), manifest.model!.version, 'the embedder swapped to the promoted version');
      embedder.close();
      return manifest.model!.version;
    };
    const until = async (done: (s: Awaited<ReturnType<typeof galleryStatus>>) => boolean) => {
      const deadline = Date.now() + 60_000;
      let last = await galleryStatus();
      while (!done(last) && Date.now() < deadline) last = await (sleep(200).then(galleryStatus));
      return last;
    };
    const next = await promote(1);
    // At once, by hand (faceprint gallery reembed); the matcher's background re-embedder may be first: either way it happens once.
    const run1 = await runFaceprint(['gallery', 'reembed', '--json'], { FACEPRINT_API_KEY: keys.keys['globex-ops']! });
    assert.equal(run1.code, 0, run1.stderr);
    const byHand = JSON.parse(run1.stdout) as { model: string; subjects_total: number; templates_added: number };
    assert.equal(byHand.model, `face-recognition-net@${next}`);
    // 0 subjects: the background run had finished; fewer than 2 templates added: it ran alongside
    // and added the rest. The gallery status below shows each template made exactly once.
    assert.ok(byHand.subjects_total === 0 || (byHand.templates_added >= 0 && byHand.templates_added <= 2), run1.stdout);
    assert.deepEqual(await until((s) => s.behind === 1), { versions: [[1, 2, 3, false], [next, 1, 2, true]], behind: 1 }, 'plain kept no crop: to re-enrol');
    const verified = await faces.verify({ subjectId: 'keeper', image: image(keeper.images[4]!), targetFar: 1e-3 }, globex);
    assert.equal(verified.decision?.isMatch, true);
    assert.equal(verified.models?.embedder?.version, next);
    const again = JSON.parse((await runFaceprint(['gallery', 'reembed', '--json'], { FACEPRINT_API_KEY: keys.keys['globex-ops']! })).stdout) as { subjects_total: number };
    assert.equal(again.subjects_total, 0, 'a second run has nothing left to do');
    await rejectsWith(faces.verify({ subjectId: 'plain', image: image(plain.images[4]!) }, globex), status.FAILED_PRECONDITION, /has no template of face-recognition-net v\d+/);

    // The next promotion, with nobody asking: the background re-embedder does it.
    const third = await promote(2);
    const after = await until((s) => s.versions.some((v) => v[0] === third && v[1] === 1));
    assert.deepEqual(after.versions.find((v) => v[0] === third), [third, 1, 2, true]);
  });
});
