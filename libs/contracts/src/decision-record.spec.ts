import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { DECISION_RECORD_TYPE, encodeDecisionRecordPayload, verifyDecisionRecord, type DecisionRecordPayload } from './decision-record.js';
import { signingKeyId } from './signed-payload.js';

describe('decision records', () => {
  const keys = generateKeyPairSync('ed25519');
  const payload: DecisionRecordPayload = {
    type: DECISION_RECORD_TYPE,
    record_id: 'r-1',
    request_id: 'pay-42',
    tenant_id: 'acme',
    decision_of: 'verify',
    subject_pseudonym: 'pseudonym:4d2c3b8e-6f0a-4b5e-9d3c-2a1b0c9d8e7f',
    probe_image_sha256: ['a'.repeat(64)],
    models: { embedder: { name: 'face-recognition-net', version: 1, sha256: 'b'.repeat(64) } },
    score: 0.95,
    threshold: 0.9452,
    target_far: 1e-4,
    far_upper_95: 1.05e-4,
    calibration_impostor_pairs: 12_095_190,
    templates_compared: 1,
    probe_quality: { unified_score: 88, face_size: 120 },
    decision: 'match',
    decided_at: '2026-12-07T12:00:00.000Z',
    signing_key_id: signingKeyId(keys.publicKey),
  };
  const signed = encodeDecisionRecordPayload(payload);
  const record = { recordId: 'r-1', signedPayload: signed, signature: sign(null, signed, keys.privateKey), signingKeyId: payload.signing_key_id, digestSha256: createHash('sha256').update(signed).digest('hex') };

  it('verifies with the signing key, in a fixed key order', () => {
    const outcome = verifyDecisionRecord(record, keys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    assert.equal(outcome.valid, true);
    assert.deepEqual(Object.keys(JSON.parse(new TextDecoder().decode(signed)) as object).slice(0, 3), ['type', 'record_id', 'request_id']);
  });

  it('refuses another key, a changed byte and a record whose repeated fields disagree', () => {
    assert.equal(verifyDecisionRecord(record, generateKeyPairSync('ed25519').publicKey).valid, false);
    const changed = Uint8Array.from(signed);
    changed[changed.length - 5]! ^= 1;
    assert.equal(verifyDecisionRecord({ ...record, signedPayload: changed }, keys.publicKey).valid, false);
    const other = verifyDecisionRecord({ ...record, recordId: 'r-2' }, keys.publicKey);
    assert.ok(!other.valid && other.problems.some((p) => /record_id/.test(p)));
  });

  it('still verifies a v1 record (subject named by its id), and no record of an unknown type', () => {
    const sealed = (document: object) => {
      const bytes = new TextEncoder().encode(JSON.stringify(document));
      return { recordId: 'r-1', signedPayload: bytes, signature: sign(null, bytes, keys.privateKey), signingKeyId: payload.signing_key_id, digestSha256: createHash('sha256').update(bytes).digest('hex') };
    };
    const { subject_pseudonym: _pseudonym, ...rest } = payload;
    assert.equal(verifyDecisionRecord(sealed({ ...rest, type: 'faceprint.decision_record.v1', subject_id: 'alice' }), keys.publicKey).valid, true);
    const unknown = verifyDecisionRecord(sealed({ ...payload, type: 'faceprint.decision_record.v9' }), keys.publicKey);
    assert.ok(!unknown.valid && unknown.problems.some((p) => /type/.test(p)));
  });
});
