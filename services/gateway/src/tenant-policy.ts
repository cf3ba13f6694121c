/**
 * What each tenant requires of a face, per purpose: whether a presentation-attack check runs and at
 * which bona fide rejection rate it decides, and the least unified quality of a verify probe and of
 * an enrolment photo. A policy file
 * (`FACEPRINT_GATEWAY_POLICY_FILE`, JSON) sets them per tenant and purpose; whatever it leaves out
 * comes from the gateway-wide settings (FACEPRINT_GATEWAY_PAD_PURPOSES, _MIN_QUALITY,
 * _MIN_ENROLL_QUALITY). A payment provider can so require PAD and a high quality for payments and
 * less for a login, without one tenant's policy reaching another's calls.
 *
 *   { "tenants": { "acme": { "payment_verification": { "presentation_attack_check": true, "pad_target_bpcer": 0.05, "min_quality": 60 } } } }
 */
import { readFileSync } from 'node:fs';
import { VerifyPurpose } from '@faceprint/contracts/gateway';
import { ConfigError } from '@faceprint/service-kit';

/** Purposes as the settings and the policy file name them. */
export const PURPOSE_NAMES: Readonly<Record<string, VerifyPurpose>> = {
  unspecified: VerifyPurpose.UNSPECIFIED,
  payment_verification: VerifyPurpose.PAYMENT_VERIFICATION,
  login: VerifyPurpose.LOGIN,
};

/** The purpose a name stands for, or undefined (an own key only: "constructor" names nothing). */
export const purposeNamed = (name: string): VerifyPurpose | undefined => (Object.hasOwn(PURPOSE_NAMES, name) ? PURPOSE_NAMES[name] : undefined);

/** The name of a purpose in settings, audit details and decision records ('' for unspecified). */
export const purposeName = (purpose: VerifyPurpose) => (purpose === VerifyPurpose.UNSPECIFIED ? '' : (Object.entries(PURPOSE_NAMES).find(([, p]) => p === purpose)?.[0] ?? ''));

/** What one purpose requires. */
export interface PurposePolicy {
  /** Run the presentation-attack check (verify: on the capture; enrolment: on each image). */
  readonly presentationAttackCheck: boolean;
  /** The least unified quality (0-100) of a probe or burst frame. */
  readonly minQuality: number;
  /** The least unified quality of an enrolment photo (the higher of this and `minQuality` applies). */
  readonly minEnrollQuality: number;
  /**
   * The bona fide rejection rate the check decides at, one of the PAD model's operating points: a
   * lower rate turns fewer genuine users away and lets more attacks through (its development APCER
   * says how many), a higher one the reverse. 0: the liveness service's own.
   */
  readonly padTargetBpcer: number;
}

/** The policy of every tenant and purpose. */
export interface TenantPolicy {
  /** What `purpose` requires of `tenantId`'s calls. */
  for(tenantId: string, purpose: VerifyPurpose): PurposePolicy;
}

/** The gateway-wide settings every policy starts from. */
export interface PolicyDefaults {
  readonly padPurposes: ReadonlySet<VerifyPurpose>;
  readonly minQuality: number;
  readonly minEnrollQuality: number;
}

const FIELDS = { presentation_attack_check: 'boolean', min_quality: 'number', min_enroll_quality: 'number', pad_target_bpcer: 'rate' } as const;

/** Reads and checks the policy file (every problem named, as a ConfigError); without a file, the defaults alone. */
export function loadTenantPolicy(file: string | undefined, defaults: PolicyDefaults): TenantPolicy {
  const base = (purpose: VerifyPurpose): PurposePolicy => ({ presentationAttackCheck: defaults.padPurposes.has(purpose), minQuality: defaults.minQuality, minEnrollQuality: defaults.minEnrollQuality, padTargetBpcer: 0 });
  if (!file) return { for: (_tenant, purpose) => base(purpose) };
  const problems: string[] = [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError({ FACEPRINT_GATEWAY_POLICY_FILE: `${file} cannot be read as JSON: ${(error as Error).message}` });
  }
  const tenants = (parsed as { tenants?: unknown }).tenants;
  const overrides = new Map<string, Partial<Record<number, Partial<PurposePolicy>>>>();
  if (typeof tenants !== 'object' || tenants === null) problems.push('must be {"tenants": {TENANT: {PURPOSE: {...}}}}');
  for (const [tenant, purposes] of Object.entries((tenants ?? {}) as Record<string, unknown>)) {
    const byPurpose: Partial<Record<number, Partial<PurposePolicy>>> = {};
    for (const [purposeName, rules] of Object.entries((purposes ?? {}) as Record<string, unknown>)) {
      const where = `tenants.${tenant}.${purposeName}`;
      const purpose = purposeNamed(purposeName);
      if (purpose === undefined) {
        problems.push(`${where}: unknown purpose (known: ${Object.keys(PURPOSE_NAMES).join(', ')})`);
        continue;
      }
      const policy: { -readonly [K in keyof PurposePolicy]?: PurposePolicy[K] } = {};
      for (const [field, value] of Object.entries((rules ?? {}) as Record<string, unknown>)) {
        const type = Object.hasOwn(FIELDS, field) ? FIELDS[field as keyof typeof FIELDS] : undefined;
        if (!type) problems.push(`${where}.${field}: unknown (known: ${Object.keys(FIELDS).join(', ')})`);
        else if (type === 'boolean' && typeof value !== 'boolean') problems.push(`${where}.${field}: must be true or false`);
        else if (type === 'number' && !(typeof value === 'number' && value >= 0 && value <= 100)) problems.push(`${where}.${field}: must be a number from 0 to 100`);
        else if (type === 'rate' && !(typeof value === 'number' && value > 0 && value <= 0.5)) problems.push(`${where}.${field}: must be a rate in (0, 0.5], one of the PAD model's operating points (e.g. 0.01)`);
        else if (field === 'presentation_attack_check') policy.presentationAttackCheck = value as boolean;
        else if (field === 'min_quality') policy.minQuality = value as number;
        else if (field === 'min_enroll_quality') policy.minEnrollQuality = value as number;
        else policy.padTargetBpcer = value as number;
      }
      byPurpose[purpose] = policy;
    }
    overrides.set(tenant, byPurpose);
  }
  if (problems.length > 0) throw new ConfigError({ FACEPRINT_GATEWAY_POLICY_FILE: `${file}: ${problems.join('; ')}` });
  return { for: (tenantId, purpose) => ({ ...base(purpose), ...overrides.get(tenantId)?.[purpose] }) };
}
