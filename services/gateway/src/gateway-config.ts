/** The gateway's own settings: where the downstream services are, API keys, face requirements. */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { address, clientCredentialsFromEnv, compileEnv, decimal, DEFAULT_GRPC_PORTS, int } from '@faceprint/service-kit';
import { VerifyPurpose } from '@faceprint/contracts/gateway';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { makeValidator, str } from 'envalid';
import { loadTenantPolicy, PURPOSE_NAMES, purposeNamed, type TenantPolicy } from './tenant-policy.js';

/** A comma-separated list of purposes, or `none`. */
const purposes = makeValidator<ReadonlySet<VerifyPurpose>>((input) => {
  const names = input.split(',').map((n) => n.trim()).filter(Boolean);
  if (names.length === 1 && names[0] === 'none') return new Set();
  const unknown = names.filter((n) => purposeNamed(n) === undefined);
  if (names.length === 0 || unknown.length > 0) throw new Error(`must be "none" or purposes from ${Object.keys(PURPOSE_NAMES).join(', ')}, comma-separated, got "${input}"`);
  return new Set(names.map((n) => purposeNamed(n)!));
});


/** The gateway's data directory unless FACEPRINT_GATEWAY_DATA_DIR says otherwise: `<repo>/data/gateway`. */
export const DEFAULT_GATEWAY_DIR = fileURLToPath(new URL('../../../data/gateway', import.meta.url));

/** Downstream addresses, call limits, API keys and face requirements of the gateway. */
export interface GatewayConfig {
  /** `FACEPRINT_DETECTOR_ADDRESS`, default `127.0.0.1:50051`. */
  readonly detectorAddress: string;
  /** `FACEPRINT_ALIGNER_ADDRESS`, default `127.0.0.1:50052`. */
  readonly alignerAddress: string;
  /** `FACEPRINT_EMBEDDER_ADDRESS`, default `127.0.0.1:50053`. */
  readonly embedderAddress: string;
  /** `FACEPRINT_MATCHER_ADDRESS`, default `127.0.0.1:50054`. */
  readonly matcherAddress: string;
  /** `FACEPRINT_LIVENESS_ADDRESS`, default `127.0.0.1:50056`. */
  readonly livenessAddress: string;
  /**
   * The verify purposes a presentation-attack check is required for: `FACEPRINT_GATEWAY_PAD_PURPOSES`,
   * comma-separated from unspecified, payment_verification, login, or `none`; default
   * payment_verification. A verify that sends extra frames is checked whatever its purpose.
   */
  readonly padPurposes: ReadonlySet<VerifyPurpose>;
  /**
   * Per tenant and purpose: the presentation-attack check and the least qualities, from
   * `FACEPRINT_GATEWAY_POLICY_FILE` (JSON, tenant-policy.ts) over the gateway-wide settings.
   */
  readonly policy: TenantPolicy;
  /** Deadline of a downstream call when the client set none, in ms. `FACEPRINT_DOWNSTREAM_TIMEOUT_MS`, default 30000. */
  readonly downstreamTimeoutMs: number;
  /**
   * The API keys file (`{"keys": [{id, tenant, roles, sha256}]}`). `FACEPRINT_GATEWAY_API_KEYS_FILE`
   * (must exist), default `api-keys.json` in the data directory, where a development tenant is
   * made if it is missing.
   */
  readonly apiKeysFile: string;
  /** The keys file is at its default path: a missing one is made with development keys. */
  readonly makeDevKeys: boolean;
  /** The smallest face accepted, in pixels (the box's shorter side). `FACEPRINT_GATEWAY_MIN_FACE_SIZE`, default 32. */
  readonly minFaceSize: number;
  /**
   * The least sharpness accepted (variance of the Laplacian over the face, as the detector reports
   * it); 0 accepts any. `FACEPRINT_GATEWAY_MIN_SHARPNESS`, default 0.
   */
  readonly minSharpness: number;
  /**
   * The least unified face quality (0-100, FaceQuality.unified_score) accepted for any face used;
   * 0 accepts any. `FACEPRINT_GATEWAY_MIN_QUALITY`, default 0.
   */
  readonly minQuality: number;
  /** The same for enrolment photos, which every later decision rests on. `FACEPRINT_GATEWAY_MIN_ENROLL_QUALITY`, default 0. */
  readonly minEnrollQuality: number;
  /**
   * Credentials of the calls to the other services: TLS when `FACEPRINT_TLS_CA_FILE` is set, mutual
   * TLS with `FACEPRINT_TLS_CLIENT_CERT_FILE` and `..._KEY_FILE` (service-kit's tls.ts); else plaintext.
   */
  readonly downstreamCredentials: ChannelCredentials | undefined;
}

/** Compiles the gateway's settings from the environment. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const local = (port: number) => `127.0.0.1:${port}`;
  const compiled = compileEnv(env, {
    FACEPRINT_DETECTOR_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.detector) }),
    FACEPRINT_ALIGNER_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.aligner) }),
    FACEPRINT_EMBEDDER_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.embedder) }),
    FACEPRINT_MATCHER_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.matcher) }),
    FACEPRINT_LIVENESS_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.liveness) }),
    FACEPRINT_GATEWAY_PAD_PURPOSES: purposes({ default: new Set([VerifyPurpose.PAYMENT_VERIFICATION]) }),
    FACEPRINT_GATEWAY_POLICY_FILE: str({ default: '' }),
    FACEPRINT_DOWNSTREAM_TIMEOUT_MS: int(100, 600_000)({ default: 30_000 }),
    FACEPRINT_GATEWAY_API_KEYS_FILE: str({ default: '' }),
    FACEPRINT_GATEWAY_DATA_DIR: str({ default: '' }),
    FACEPRINT_GATEWAY_MIN_FACE_SIZE: int(1, 10_000)({ default: 32 }),
    FACEPRINT_GATEWAY_MIN_SHARPNESS: decimal(0, 1e9)({ default: 0 }),
    FACEPRINT_GATEWAY_MIN_QUALITY: decimal(0, 100)({ default: 0 }),
    FACEPRINT_GATEWAY_MIN_ENROLL_QUALITY: decimal(0, 100)({ default: 0 }),
  });
  // A relative path is taken from where the user ran the command (npm -w changes directory).
  const fromCwd = (path: string) => resolve(env.INIT_CWD ?? process.cwd(), path);
  const dataDir = fromCwd(compiled.FACEPRINT_GATEWAY_DATA_DIR || DEFAULT_GATEWAY_DIR);
  return Object.freeze({
    detectorAddress: compiled.FACEPRINT_DETECTOR_ADDRESS,
    alignerAddress: compiled.FACEPRINT_ALIGNER_ADDRESS,
    embedderAddress: compiled.FACEPRINT_EMBEDDER_ADDRESS,
    matcherAddress: compiled.FACEPRINT_MATCHER_ADDRESS,
    livenessAddress: compiled.FACEPRINT_LIVENESS_ADDRESS,
    padPurposes: compiled.FACEPRINT_GATEWAY_PAD_PURPOSES,
    policy: loadTenantPolicy(compiled.FACEPRINT_GATEWAY_POLICY_FILE ? fromCwd(compiled.FACEPRINT_GATEWAY_POLICY_FILE) : undefined, {
      padPurposes: compiled.FACEPRINT_GATEWAY_PAD_PURPOSES,
      minQuality: compiled.FACEPRINT_GATEWAY_MIN_QUALITY,
      minEnrollQuality: compiled.FACEPRINT_GATEWAY_MIN_ENROLL_QUALITY,
    }),
    downstreamTimeoutMs: compiled.FACEPRINT_DOWNSTREAM_TIMEOUT_MS,
    apiKeysFile: compiled.FACEPRINT_GATEWAY_API_KEYS_FILE ? fromCwd(compiled.FACEPRINT_GATEWAY_API_KEYS_FILE) : join(dataDir, 'api-keys.json'),
    makeDevKeys: !compiled.FACEPRINT_GATEWAY_API_KEYS_FILE,
    minFaceSize: compiled.FACEPRINT_GATEWAY_MIN_FACE_SIZE,
    minSharpness: compiled.FACEPRINT_GATEWAY_MIN_SHARPNESS,
    minQuality: compiled.FACEPRINT_GATEWAY_MIN_QUALITY,
    minEnrollQuality: compiled.FACEPRINT_GATEWAY_MIN_ENROLL_QUALITY,
    downstreamCredentials: clientCredentialsFromEnv(env),
  });
}
