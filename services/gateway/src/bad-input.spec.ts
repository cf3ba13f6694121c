/**
 * A corpus of bad input, gathered the way a hostile or careless caller sends it: broken and
 * absurd images (empty, truncated, decompression bombs in PNG and SVG, a 60 MB upload), ids with
 * injection strings and control characters, out-of-range numbers, regions outside the image,
 * malformed credentials. Through the local mesh, every kind must get a clear gRPC status naming
 * what is wrong (INVALID_ARGUMENT with the field, UNAUTHENTICATED, ...), never a crash, a hang or
 * UNKNOWN; through the `faceprint` command, exit 2 with one line saying why. The mesh stays up
 * and serving at the end.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ConsentSchema, LegalBasis } from '@faceprint/contracts/common';
import { ComplianceService, FaceService } from '@faceprint/contracts/gateway';
import { startLocalMesh, type LocalMesh } from '@faceprint/mesh';
import { createClient, FaceprintError, type ServiceClient } from '@faceprint/service-kit';
import { checkHealth, IDENTITIES_DIR, runFaceprint, ServingStatus, skipUnlessPresent, testModelRegistry } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { withKey, writeTestApiKeys } from './test-support.js';


/** A PNG whose header claims `width` x `height` (a decompression bomb's header; the body is one tiny row). */
function pngClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.alloc(1 + 3 * 16))), chunk('IEND', Buffer.alloc(0))]);
}

/** An SVG "billion laughs": nested entities that expand to gigabytes if a parser lets them. */
const SVG_ENTITY_BOMB = Buffer.from(`<?xml version="1.0"?>
<!DOCTYPE svg [
<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
<!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><text>&i;</text></svg>`);

interface BadCall {
  /** What kind of bad input this is. */
  readonly kind: string;
  readonly call: () => Promise<unknown>;
  readonly code: status;
  /** What the status's message (or one of its field violations) must say. */
  readonly says: RegExp;
}

interface BadCommand {
  readonly kind: string;
  readonly args: string[];
  /** What the one error line must say. */
  readonly says: RegExp;
}

describe('bad input, gathered', { skip: skipUnlessPresent(IDENTITIES_DIR) }, () => {
  const keys = writeTestApiKeys([
    { id: 'ops', tenant: 'acme', roles: ['operator'] },
    { id: 'dpo', tenant: 'acme', roles: ['compliance'] },
  ]);
  const ops = withKey(keys.keys.ops!);
  const dpo = withKey(keys.keys.dpo!);
  let dir: string;
  let mesh: LocalMesh;
  let faces: ServiceClient<typeof FaceService>;
  let compliance: ServiceClient<typeof ComplianceService>;
  let face: Buffer;
  const consent = create(ConsentSchema, { legalBasis: LegalBasis.EXPLICIT_CONSENT, purpose: 'access_control', givenAt: timestampFromDate(new Date()), collectionPoint: 'bad-input-test', retentionDays: 30 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faceprint-bad-input-'));
    const person = (await readdir(IDENTITIES_DIR)).sort()[0]!;
    face = await readFile(join(IDENTITIES_DIR, person, (await readdir(join(IDENTITIES_DIR, person))).sort()[0]!));
    Object.assign(process.env, { FACEPRINT_MODEL_REGISTRY: await testModelRegistry(), FACEPRINT_MATCHER_DATA_DIR: join(dir, 'gallery'), FACEPRINT_GATEWAY_API_KEYS_FILE: keys.file });
    mesh = await startLocalMesh({ ports: 'free', tlsDir: join(dir, 'tls') });
    faces = createClient(FaceService, mesh.endpoints.gateway, { defaultTimeoutMs: 60_000, retry: false });
    compliance = createClient(ComplianceService, mesh.endpoints.gateway, { retry: false });
    await faces.enroll({ requestId: 'known-1', subjectId: 'known', images: [{ image: { content: face } }], consent }, ops);
  });
  after(async () => {
    faces?.close();
    compliance?.close();
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers every kind of bad call with a clear status that says what is wrong', async () => {
    const probe = (content: Uint8Array) => faces.identify({ image: { image: { content } } }, ops);
    const region = (x: number, y: number, width: number, height: number) => faces.identify({ image: { image: { content: face }, faceRegion: { x, y, width, height } } }, ops);
    const enroll = (fields: Record<string, unknown>) => faces.enroll({ requestId: 'bad-1', subjectId: 'someone', images: [{ image: { content: face } }], consent, ...fields }, ops);
    const unbounded = createClient(FaceService, mesh.endpoints.gateway, { retry: false, maxMessageBytes: 128 * 1024 * 1024 });
    const truncated = face.subarray(0, Math.floor(face.length / 3));
    const corpus: BadCall[] = [
      { kind: 'empty image', call: () => probe(new Uint8Array(0)), code: status.INVALID_ARGUMENT, says: /image.*(required|empty)/ },
      { kind: 'random bytes', call: () => probe(new Uint8Array(4096).fill(7)), code: status.INVALID_ARGUMENT, says: /corrupt, truncated or not a/ },
      { kind: 'truncated image', call: () => probe(truncated), code: status.INVALID_ARGUMENT, says: /corrupt or truncated|corrupt, truncated/ },
      { kind: 'PNG bomb 20000x20000', call: () => probe(pngClaiming(20_000, 20_000)), code: status.INVALID_ARGUMENT, says: /20000x20000 \(400000000 pixels\); the limit is 40000000 pixels/ },
      { kind: 'PNG bomb 60000x60000', call: () => probe(pngClaiming(60_000, 60_000)), code: status.INVALID_ARGUMENT, says: /60000x60000 .* the limit is 40000000 pixels/ },
      { kind: 'SVG entity bomb', call: () => probe(SVG_ENTITY_BOMB), code: status.INVALID_ARGUMENT, says: /unsupported image format|not a/ },
      { kind: '11 MiB image', call: () => probe(new Uint8Array(11 * 1024 * 1024)), code: status.INVALID_ARGUMENT, says: /10485760/ },
      // Sent by a client that allows itself more (faceprint's own clients refuse to send it): the
      // gateway reads up to 64 MiB, so a 60 MB upload meets the image limit's own message; over the
      // largest gRPC message, grpc-js refuses it before any handler, naming that limit.
      { kind: '60 MB upload', call: () => unbounded.identify({ image: { image: { content: new Uint8Array(60_000_000) } } }, ops), code: status.INVALID_ARGUMENT, says: /image\.image\.content.*the limit is 10485760 bytes \(10 MiB\)/ },
      { kind: '100 MB upload', call: () => unbounded.identify({ image: { image: { content: new Uint8Array(100_000_000) } } }, ops), code: status.RESOURCE_EXHAUSTED, says: /larger than max \(\d+ vs 67108864\)/ },
      { kind: 'an image without a face', call: () => probe(pngClaiming(16, 1)), code: status.INVALID_ARGUMENT, says: /image\.image/ },
      { kind: 'face region NaN', call: () => region(Number.NaN, 0, 10, 10), code: status.INVALID_ARGUMENT, says: /face_region: must hold finite numbers/ },
      { kind: 'face region negative', call: () => region(-5, 0, 10, 10), code: status.INVALID_ARGUMENT, says: /face_region: x and y must be 0 or more/ },
      { kind: 'face region of no size', call: () => region(0, 0, 0, 10), code: status.INVALID_ARGUMENT, says: /face_region: width and height must be above 0/ },
      { kind: 'face region outside the image', call: () => region(100_000, 100_000, 50, 50), code: status.INVALID_ARGUMENT, says: /face_region/ },
      { kind: 'subject id with SQL', call: () => faces.verify({ subjectId: "x'; DROP TABLE subjects;--", image: { image: { content: face } } }, ops), code: status.INVALID_ARGUMENT, says: /subject_id/ },
      { kind: 'subject id with a newline', call: () => faces.verify({ subjectId: 'a\nb', image: { image: { content: face } } }, ops), code: status.INVALID_ARGUMENT, says: /subject_id/ },
      { kind: 'subject id of 129 characters', call: () => faces.verify({ subjectId: 'a'.repeat(129), image: { image: { content: face } } }, ops), code: status.INVALID_ARGUMENT, says: /subject_id/ },
      { kind: 'subject id empty', call: () => faces.verify({ subjectId: '', image: { image: { content: face } } }, ops), code: status.INVALID_ARGUMENT, says: /subject_id/ },
      { kind: 'target FAR NaN', call: () => faces.verify({ subjectId: 'known', image: { image: { content: face } }, targetFar: Number.NaN }, ops), code: status.INVALID_ARGUMENT, says: /target_far/ },
      { kind: 'target FAR negative', call: () => faces.verify({ subjectId: 'known', image: { image: { content: face } }, targetFar: -1 }, ops), code: status.INVALID_ARGUMENT, says: /target_far/ },
      { kind: 'target FAR above 0.5', call: () => faces.verify({ subjectId: 'known', image: { image: { content: face } }, targetFar: 0.9 }, ops), code: status.INVALID_ARGUMENT, says: /target_far/ },
      { kind: 'target FAR not calibrated', call: () => faces.verify({ subjectId: 'known', image: { image: { content: face } }, targetFar: 0.0123 }, ops), code: status.FAILED_PRECONDITION, says: /no threshold calibrated for a false-match rate of 0.0123; calibrated: 0.001, 0.0001/ },
      { kind: 'top-k above 100', call: () => faces.identify({ image: { image: { content: face } }, topK: 1000 }, ops), code: status.INVALID_ARGUMENT, says: /top_k/ },
      { kind: 'enrolment without images', call: () => enroll({ images: [] }), code: status.INVALID_ARGUMENT, says: /images/ },
      { kind: 'enrolment of 11 images', call: () => enroll({ images: Array.from({ length: 11 }, () => ({ image: { content: face } })) }), code: status.INVALID_ARGUMENT, says: /images/ },
      { kind: 'enrolment without a request id', call: () => enroll({ requestId: '' }), code: status.INVALID_ARGUMENT, says: /request_id/ },
      { kind: 'enrolment without consent', call: () => enroll({ consent: undefined }), code: status.INVALID_ARGUMENT, says: /consent/ },
      { kind: 'enrolment with an absurd retention', call: () => enroll({ consent: { ...consent, retentionDays: 1_000_000 } }), code: status.INVALID_ARGUMENT, says: /retention_days/ },
      { kind: 'enrolment with 1000 metadata entries', call: () => enroll({ subjectMetadata: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, 'v'])) }), code: status.INVALID_ARGUMENT, says: /subject_metadata/ },
      { kind: 'erasure without a subject', call: () => compliance.eraseSubject({ subjectId: '', requestRef: 'DSR-1' }, dpo), code: status.INVALID_ARGUMENT, says: /subject_id/ },
      { kind: 'audit page of 100000', call: () => compliance.listAuditEvents({ pageSize: 100_000 }, dpo), code: status.INVALID_ARGUMENT, says: /page_size/ },
      { kind: 'audit page token forged', call: () => compliance.listAuditEvents({ pageToken: 'not-a-token' }, dpo), code: status.INVALID_ARGUMENT, says: /page_token/ },
      { kind: 'no API key', call: () => faces.identify({ image: { image: { content: face } } }), code: status.UNAUTHENTICATED, says: /API key is required/ },
      { kind: 'a forged API key', call: () => faces.identify({ image: { image: { content: face } } }, withKey('fpk_forged')), code: status.UNAUTHENTICATED, says: /not valid/ },
      { kind: '"Bearer Bearer" credentials', call: () => faces.identify({ image: { image: { content: face } } }, { metadata: { authorization: `Bearer Bearer ${keys.keys.ops!}` } }), code: status.UNAUTHENTICATED, says: /authorization metadata is not valid/ },
      { kind: 'the wrong role', call: () => compliance.exportSubject({ subjectId: 'known', requestRef: 'SAR-1' }, ops), code: status.PERMISSION_DENIED, says: /"compliance" role/ },
    ];
    const wrong: string[] = [];
    for (const { kind, call, code, says } of corpus) {
      const answer = await call().then(
        () => undefined,
        (error: unknown) => error,
      );
      if (!(answer instanceof FaceprintError)) {
        wrong.push(`${kind}: ${answer === undefined ? 'accepted' : answer instanceof Error ? answer.message : 'not an error'}`);
        continue;
      }
      const text = [answer.message, ...answer.fieldViolations.map((v) => `${v.field}: ${v.description}`)].join(' | ');
      if (answer.code !== code || !says.test(text)) wrong.push(`${kind}: ${status[answer.code]} ${text}`);
    }
    unbounded.close();
    assert.ok(corpus.length >= 25, `${corpus.length} kinds`);
    assert.deepEqual(wrong, [], `of ${corpus.length} kinds of bad input, these were not answered as expected:\n${wrong.join('\n')}`);
    // Nothing above hurt the mesh: it serves, and the known subject still verifies.
    assert.equal(await checkHealth(mesh.endpoints.gateway, FaceService.typeName), ServingStatus.SERVING);
    const verified = await faces.verify({ subjectId: 'known', image: { image: { content: face } } }, ops);
    assert.equal(verified.decision?.isMatch, true);
  });

  it('answers every kind of bad command line with exit 2 and one line that says why', async () => {
    const file = (name: string, bytes: Uint8Array) => writeFile(join(dir, name), bytes).then(() => join(dir, name));
    const [faceFile, bomb, svg, text] = await Promise.all([file('face.png', face), file('bomb.png', pngClaiming(20_000, 20_000)), file('bomb.svg', SVG_ENTITY_BOMB), file('notes.txt', Buffer.from('not an image'))]);
    const big = await file('big.jpg', new Uint8Array(60_000_000));
    const commands: BadCommand[] = [
      { kind: 'a missing file', args: ['identify', join(dir, 'missing.jpg')], says: /missing\.jpg: no such file/ },
      { kind: 'a directory', args: ['identify', dir], says: /is a directory/ },
      { kind: 'a 60 MB file', args: ['identify', big], says: /at most 10485760 bytes \(10 MiB\)/ },
      { kind: 'a text file', args: ['identify', text], says: /image\.image/ },
      { kind: 'a PNG bomb', args: ['identify', bomb], says: /the limit is 40000000 pixels/ },
      { kind: 'an SVG bomb', args: ['identify', svg], says: /image\.image/ },
      { kind: '--top -1', args: ['identify', faceFile, '--top', '-1'], says: /--top must be a whole number from 1 to 100, got "-1"/ },
      { kind: '--top many', args: ['identify', faceFile, '--top', 'many'], says: /--top must be/ },
      { kind: '--far 0.9', args: ['verify', '--subject', 'known', faceFile, '--far', '0.9'], says: /--far must be/ },
      { kind: '--far not calibrated', args: ['verify', '--subject', 'known', faceFile, '--far', '0.0123'], says: /calibrated/ },
      { kind: '--face-region with 3 numbers', args: ['identify', faceFile, '--face-region', '1,2,3'], says: /--face-region must be X,Y,WIDTH,HEIGHT/ },
      { kind: '--subject with SQL', args: ['verify', '--subject', "x'; DROP TABLE subjects;--", faceFile], says: /subject_id/ },
      { kind: '--retention-days 0', args: ['enroll', '--subject', 'someone', faceFile, '--retention-days', '0'], says: /--retention-days must be/ },
      { kind: '--basis bogus', args: ['enroll', '--subject', 'someone', faceFile, '--basis', 'bogus'], says: /--basis must be one of/ },
      { kind: 'an unknown flag', args: ['identify', faceFile, '--bogus'], says: /Unknown option '--bogus'/ },
      { kind: 'no --subject', args: ['verify', faceFile], says: /--subject/ },
      { kind: 'a malformed --target', args: ['identify', faceFile, '--target', 'no port'], says: /--target must be HOST:PORT/ },
    ];
    const wrong: string[] = [];
    for (const { kind, args, says } of commands) {
      const result = await runFaceprint(args, { FACEPRINT_API_KEY: keys.keys.ops!, FACEPRINT_TARGET: mesh.endpoints.gateway });
      const lines = result.stderr.split('\n').filter((line) => line.startsWith('faceprint:'));
      if (result.code !== 2 || lines.length !== 1 || !says.test(result.stderr)) wrong.push(`${kind}: exit ${result.code}, ${result.stderr.trim()}`);
    }
    assert.deepEqual(wrong, [], `these command lines were not refused as expected:\n${wrong.join('\n')}`);
  });
});
