import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VerifyPurpose } from '@faceprint/contracts/gateway';
import { type ConfigError } from '@faceprint/service-kit';
import { loadTenantPolicy } from './tenant-policy.js';

const defaults = { padPurposes: new Set([VerifyPurpose.PAYMENT_VERIFICATION]), minQuality: 10, minEnrollQuality: 20 };
const file = (content: unknown) => {
  const path = join(mkdtempSync(join(tmpdir(), 'faceprint-policy-')), 'policy.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};

describe('the tenant policy', () => {
  it('is the gateway-wide settings without a file', () => {
    const policy = loadTenantPolicy(undefined, defaults);
    assert.deepEqual(policy.for('any', VerifyPurpose.PAYMENT_VERIFICATION), { presentationAttackCheck: true, minQuality: 10, minEnrollQuality: 20, padTargetBpcer: 0 });
    assert.deepEqual(policy.for('any', VerifyPurpose.LOGIN), { presentationAttackCheck: false, minQuality: 10, minEnrollQuality: 20, padTargetBpcer: 0 });
  });

  it('overrides per tenant and purpose what its file names, and only there', () => {
    const policy = loadTenantPolicy(file({ tenants: { bank: { login: { presentation_attack_check: true, min_quality: 50 }, payment_verification: { min_enroll_quality: 80, pad_target_bpcer: 0.01 } } } }), defaults);
    assert.deepEqual(policy.for('bank', VerifyPurpose.LOGIN), { presentationAttackCheck: true, minQuality: 50, minEnrollQuality: 20, padTargetBpcer: 0 });
    assert.deepEqual(policy.for('bank', VerifyPurpose.PAYMENT_VERIFICATION), { presentationAttackCheck: true, minQuality: 10, minEnrollQuality: 80, padTargetBpcer: 0.01 });
    assert.deepEqual(policy.for('shop', VerifyPurpose.LOGIN), { presentationAttackCheck: false, minQuality: 10, minEnrollQuality: 20, padTargetBpcer: 0 }, 'another tenant keeps the defaults');
  });

  it('refuses a file it cannot use, naming every problem', () => {
    assert.throws(() => loadTenantPolicy(file('{ not json'), defaults), (error: ConfigError) => /cannot be read as JSON/.test(error.problems.FACEPRINT_GATEWAY_POLICY_FILE!));
    assert.throws(
      () => loadTenantPolicy(file({ tenants: { bank: { payments: {}, constructor: {}, login: { min_quality: 101, presentation_attack_check: 'yes', pad: true, toString: 1, pad_target_bpcer: 0.9 } } } }), defaults),
      (error: ConfigError) => {
        const why = error.problems.FACEPRINT_GATEWAY_POLICY_FILE!;
        return [/tenants\.bank\.payments: unknown purpose/, /tenants\.bank\.constructor: unknown purpose/, /login\.min_quality: must be a number from 0 to 100/, /login\.presentation_attack_check: must be true or false/, /login\.pad: unknown/, /login\.toString: unknown/, /login\.pad_target_bpcer: must be a rate in \(0, 0\.5\]/].every((p) => p.test(why));
      },
    );
  });
});
