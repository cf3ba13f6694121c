/** The matcher's own settings. */
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { RETIRED_SIGNING_KEYS_DIR } from '@faceprint/contracts';
import { registryRootFromEnv } from '@faceprint/model-registry';
import { clientCredentialsFromEnv, compileEnv, ConfigError, decimal, DEFAULT_GRPC_PORTS, int } from '@faceprint/service-kit';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { makeValidator, str } from 'envalid';
import type { Pkcs11Options } from './compliance/pkcs11-master-key.js';
import type { ScrubMode } from './database/erased-rows-scrub.js';
import type { IndexSnapshotSettings } from './search/index-snapshots.js';

/** Where the embedded gallery lives unless FACEPRINT_MATCHER_DATA_DIR says otherwise: `<repo>/data/gallery`. */
export const DEFAULT_GALLERY_DIR = fileURLToPath(new URL('../../../data/gallery', import.meta.url));

/** A Postgres schema name: lower-case letters, digits and `_`, starting with a letter. */
const schemaName = makeValidator<string>((input) => {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(input)) throw new Error(`must be a lower-case SQL identifier ([a-z][a-z0-9_]*), got "${input}"`);
  return input;
});

/** A postgres:// connection URL, or empty for the embedded gallery. */
const databaseUrl = makeValidator<string>((input) => {
  if (input === '') return input;
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new Error('must be a postgres:// or postgresql:// URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error(`must be a postgres:// or postgresql:// URL, got protocol "${url.protocol}"`);
  return input;
});

/** The matcher's settings. */
export interface MatcherConfig {
  /**
   * The PostgreSQL connection URL. `FACEPRINT_DATABASE_URL`; empty (the default) runs the
   * embedded gallery (PGlite) in this process, stored under {@link dataDir}.
   */
  readonly databaseUrl: string;
  /** The embedded gallery's directory. `FACEPRINT_MATCHER_DATA_DIR`, default `<repo>/data/gallery`. */
  readonly dataDir: string;
  /** The Postgres schema that holds the gallery tables. `FACEPRINT_DATABASE_SCHEMA`, default `faceprint`. */
  readonly schema: string;
  /** Connections in the pool. `FACEPRINT_DATABASE_POOL_SIZE`, default 10. */
  readonly poolSize: number;
  /** The model registry root (manifests give dimensions and calibrated thresholds). `FACEPRINT_MODEL_REGISTRY`. */
  readonly registryRoot: string;
  /** The target false-match rate of a new tenant. `FACEPRINT_MATCHER_DEFAULT_TARGET_FAR`, default 1e-4. */
  readonly defaultTargetFar: number;
  /** Below this many templates a partition is searched exactly; at and above it, through HNSW. `FACEPRINT_MATCHER_EXACT_SEARCH_LIMIT`, default 20000. */
  readonly exactSearchLimit: number;
  /** How often the index polls the change log when no notification arrives, in ms. `FACEPRINT_MATCHER_SYNC_INTERVAL_MS`, default 1000. */
  readonly syncIntervalMs: number;
  /**
   * This replica's index snapshots (restart from them instead of rebuilding the index from the
   * database): `FACEPRINT_MATCHER_INDEX_DIR`, default `<dataDir>-index` for the embedded gallery
   * and none for PostgreSQL (each replica needs a directory of its own: an emptyDir in
   * Kubernetes); saved every `FACEPRINT_MATCHER_INDEX_SNAPSHOT_INTERVAL_MS` (default 900000; 0
   * turns snapshots off) while changes arrive and within
   * `FACEPRINT_MATCHER_INDEX_SNAPSHOT_AFTER_REMOVAL_MS` (default 60000) of a removal. Undefined: off.
   */
  readonly indexSnapshots: IndexSnapshotSettings | undefined;
  /**
   * The matcher's keys, apart from the gallery: never inside {@link dataDir}, so that a copy of the
   * gallery's files holds nothing that opens it. `FACEPRINT_MATCHER_KEY_DIR`, default
   * `<dataDir>-keys` (for the default gallery, `<repo>/data/gallery-keys`).
   */
  readonly keyDir: string;
  /**
   * The key store: the subjects' wrapped data keys, one file each, destroyed in place on erasure.
   * `FACEPRINT_MATCHER_KEY_STORE_DIR`, default `<keyDir>/data-keys`.
   */
  readonly keyStoreDir: string;
  /**
   * The master key that wraps the per-subject data keys (base64 of 32 bytes).
   * `FACEPRINT_MATCHER_MASTER_KEY_FILE`, default `<keyDir>/master.key` (generated there if missing).
   */
  readonly masterKeyFile: string;
  /**
   * The master key in a hardware security module instead of {@link masterKeyFile}: set by
   * `FACEPRINT_MATCHER_PKCS11_LIBRARY` (the module's PKCS#11 library), with
   * `FACEPRINT_MATCHER_PKCS11_TOKEN_LABEL` and `FACEPRINT_MATCHER_PKCS11_PIN_FILE` (both required),
   * `FACEPRINT_MATCHER_PKCS11_WRAP_KEY_LABEL` (default `faceprint-master`),
   * `FACEPRINT_MATCHER_PKCS11_DIGEST_KEY_LABEL` (default `faceprint-digest`) and
   * `FACEPRINT_MATCHER_PKCS11_SESSIONS` (default 4). Undefined: the master key file.
   */
  readonly hsm: Pkcs11Options | undefined;
  /**
   * The Ed25519 private key (PKCS#8 PEM) that signs erasure receipts; its public key is written
   * beside it as `.pub.pem`. `FACEPRINT_MATCHER_SIGNING_KEY_FILE`, default
   * `<keyDir>/receipt-signing.pem` (generated there if missing).
   */
  readonly signingKeyFile: string;
  /**
   * Retired receipt-signing public keys (`*.pem`), still handed out by GetPublicKeys so that what
   * they signed stays verifiable after a rotation (`faceprint receipt rotate-key` moves the old one
   * here). `FACEPRINT_MATCHER_RETIRED_SIGNING_KEYS_DIR`, default `retired-signing-keys` beside the signing key.
   */
  readonly retiredSigningKeysDir: string;
  /** Where keys were kept by default before they moved out of the gallery: `<dataDir>/keys` (moved at start). */
  readonly formerKeyDir: string;
  /**
   * How far an erasure reaches into the database's files. `FACEPRINT_MATCHER_ERASURE_SCRUB`:
   * `full` (default; rewrite the subject tables and retire the WAL that held the rows) or `keys`
   * (destroy the keys only). See database/erased-rows-scrub.ts.
   */
  readonly erasureScrub: ScrubMode;
  /** The master key file is at its default path, where a missing key is generated. */
  readonly generateMasterKey: boolean;
  /** The signing key file is at its default path, where a missing key is generated. */
  readonly generateSigningKey: boolean;
  /**
   * The certificate name of the gateway, the only caller whose context (tenant, roles) the matcher
   * takes, under mutual TLS. `FACEPRINT_MATCHER_GATEWAY_IDENTITY`, default `gateway`.
   */
  readonly gatewayIdentity: string;
  /** The certificate name of the trainer, the only caller of ExportTrainingTemplates. `FACEPRINT_MATCHER_TRAINER_IDENTITY`, default `trainer`. */
  readonly trainerIdentity: string;
  /** How often the retention sweeper erases subjects whose retention has ended, in ms. `FACEPRINT_MATCHER_RETENTION_SWEEP_MS`, default 60000. */
  readonly retentionSweepMs: number;
  /**
   * How often data keys no subject uses (left by failed enrolments, over an hour old) are destroyed,
   * in ms; 0: never. `FACEPRINT_MATCHER_UNUSED_KEY_SWEEP_MS`, default 3600000.
   */
  readonly unusedKeySweepMs: number;
  /**
   * The embedder that re-creates templates from retained crops (ReembedTemplates; TLS from the
   * FACEPRINT_TLS_* client settings). `FACEPRINT_EMBEDDER_ADDRESS`, default `127.0.0.1:50053`.
   */
  readonly embedderAddress: string;
  /** TLS for calls to the embedder, from the FACEPRINT_TLS_* client settings; undefined: plaintext. */
  readonly embedderCredentials: ChannelCredentials | undefined;
  /**
   * How often the background re-embedder looks for templates to re-create from kept crops after a
   * promotion, in ms; 0 turns it off (ReembedTemplates still works). `FACEPRINT_MATCHER_REEMBED_INTERVAL_MS`, default 30000.
   */
  readonly reembedIntervalMs: number;
}

/** Compiles the matcher's settings from the environment. */
export function loadMatcherConfig(env: NodeJS.ProcessEnv): MatcherConfig {
  const compiled = compileEnv(env, {
    FACEPRINT_DATABASE_URL: databaseUrl({ default: '' }),
    FACEPRINT_MATCHER_DATA_DIR: str({ default: '' }),
    FACEPRINT_DATABASE_SCHEMA: schemaName({ default: 'faceprint' }),
    FACEPRINT_DATABASE_POOL_SIZE: int(1, 200)({ default: 10 }),
    FACEPRINT_MATCHER_DEFAULT_TARGET_FAR: decimal(1e-9, 0.5)({ default: 1e-4 }),
    FACEPRINT_MATCHER_EXACT_SEARCH_LIMIT: int(0, 100_000_000)({ default: 20_000 }),
    FACEPRINT_MATCHER_SYNC_INTERVAL_MS: int(10, 600_000)({ default: 1000 }),
    FACEPRINT_MATCHER_INDEX_DIR: str({ default: '' }),
    FACEPRINT_MATCHER_INDEX_SNAPSHOT_INTERVAL_MS: int(0, 86_400_000)({ default: 900_000 }),
    FACEPRINT_MATCHER_INDEX_SNAPSHOT_AFTER_REMOVAL_MS: int(0, 3_600_000)({ default: 60_000 }),
    FACEPRINT_MATCHER_KEY_DIR: str({ default: '' }),
    FACEPRINT_MATCHER_KEY_STORE_DIR: str({ default: '' }),
    FACEPRINT_MATCHER_ERASURE_SCRUB: str({ choices: ['full', 'keys'], default: 'full' }),
    FACEPRINT_MATCHER_MASTER_KEY_FILE: str({ default: '' }),
    FACEPRINT_MATCHER_PKCS11_LIBRARY: str({ default: '' }),
    FACEPRINT_MATCHER_PKCS11_TOKEN_LABEL: str({ default: '' }),
    FACEPRINT_MATCHER_PKCS11_PIN_FILE: str({ default: '' }),
    FACEPRINT_MATCHER_PKCS11_WRAP_KEY_LABEL: str({ default: 'faceprint-master' }),
    FACEPRINT_MATCHER_PKCS11_DIGEST_KEY_LABEL: str({ default: 'faceprint-digest' }),
    FACEPRINT_MATCHER_PKCS11_SESSIONS: int(1, 64)({ default: 4 }),
    FACEPRINT_MATCHER_SIGNING_KEY_FILE: str({ default: '' }),
    FACEPRINT_MATCHER_RETIRED_SIGNING_KEYS_DIR: str({ default: '' }),
    FACEPRINT_MATCHER_RETENTION_SWEEP_MS: int(100, 86_400_000)({ default: 60_000 }),
    FACEPRINT_MATCHER_UNUSED_KEY_SWEEP_MS: int(0, 86_400_000)({ default: 3_600_000 }),
    FACEPRINT_MATCHER_GATEWAY_IDENTITY: str({ default: 'gateway' }),
    FACEPRINT_MATCHER_TRAINER_IDENTITY: str({ default: 'trainer' }),
    FACEPRINT_EMBEDDER_ADDRESS: str({ default: `127.0.0.1:${DEFAULT_GRPC_PORTS.embedder}` }),
    FACEPRINT_MATCHER_REEMBED_INTERVAL_MS: int(0, 86_400_000)({ default: 30_000 }),
  });
  // A relative path is taken from where the user ran the command (npm -w changes directory).
  const fromCwd = (path: string) => resolve(env.INIT_CWD ?? process.cwd(), path);
  const dataDir = fromCwd(compiled.FACEPRINT_MATCHER_DATA_DIR || DEFAULT_GALLERY_DIR);
  const keyDir = compiled.FACEPRINT_MATCHER_KEY_DIR ? fromCwd(compiled.FACEPRINT_MATCHER_KEY_DIR) : `${dataDir.replace(/\/+$/, '')}-keys`;
  const signingKeyFile = compiled.FACEPRINT_MATCHER_SIGNING_KEY_FILE ? fromCwd(compiled.FACEPRINT_MATCHER_SIGNING_KEY_FILE) : join(keyDir, 'receipt-signing.pem');
  if (isWithin(keyDir, dataDir)) throw new ConfigError({ FACEPRINT_MATCHER_KEY_DIR: `must not be inside the gallery's data directory (${dataDir}): a copy of the gallery would then hold what opens it` });
  const indexDir = compiled.FACEPRINT_MATCHER_INDEX_DIR ? fromCwd(compiled.FACEPRINT_MATCHER_INDEX_DIR) : compiled.FACEPRINT_DATABASE_URL === '' ? `${dataDir.replace(/\/+$/, '')}-index` : '';
  if (indexDir && isWithin(indexDir, dataDir)) throw new ConfigError({ FACEPRINT_MATCHER_INDEX_DIR: `must not be inside the gallery's data directory (${dataDir})` });
  const indexSnapshots =
    indexDir && compiled.FACEPRINT_MATCHER_INDEX_SNAPSHOT_INTERVAL_MS > 0
      ? { directory: indexDir, intervalMs: compiled.FACEPRINT_MATCHER_INDEX_SNAPSHOT_INTERVAL_MS, afterRemovalMs: compiled.FACEPRINT_MATCHER_INDEX_SNAPSHOT_AFTER_REMOVAL_MS }
      : undefined;
  const hsm = compiled.FACEPRINT_MATCHER_PKCS11_LIBRARY
    ? {
        library: fromCwd(compiled.FACEPRINT_MATCHER_PKCS11_LIBRARY),
        tokenLabel: compiled.FACEPRINT_MATCHER_PKCS11_TOKEN_LABEL,
        pinFile: compiled.FACEPRINT_MATCHER_PKCS11_PIN_FILE && fromCwd(compiled.FACEPRINT_MATCHER_PKCS11_PIN_FILE),
        wrapKeyLabel: compiled.FACEPRINT_MATCHER_PKCS11_WRAP_KEY_LABEL,
        digestKeyLabel: compiled.FACEPRINT_MATCHER_PKCS11_DIGEST_KEY_LABEL,
        sessions: compiled.FACEPRINT_MATCHER_PKCS11_SESSIONS,
      }
    : undefined;
  if (hsm) {
    // With an HSM the master key is there and nowhere else.
    const problems: Record<string, string> = {};
    if (!hsm.tokenLabel) problems.FACEPRINT_MATCHER_PKCS11_TOKEN_LABEL = 'is required with FACEPRINT_MATCHER_PKCS11_LIBRARY: the label of the token that holds the keys';
    if (!hsm.pinFile) problems.FACEPRINT_MATCHER_PKCS11_PIN_FILE = "is required with FACEPRINT_MATCHER_PKCS11_LIBRARY: a file holding the token's user PIN";
    if (compiled.FACEPRINT_MATCHER_MASTER_KEY_FILE) problems.FACEPRINT_MATCHER_MASTER_KEY_FILE = 'must not be set with FACEPRINT_MATCHER_PKCS11_LIBRARY: the master key is in the HSM';
    if (Object.keys(problems).length > 0) throw new ConfigError(problems);
  }
  return Object.freeze({
    databaseUrl: compiled.FACEPRINT_DATABASE_URL,
    dataDir,
    schema: compiled.FACEPRINT_DATABASE_SCHEMA,
    poolSize: compiled.FACEPRINT_DATABASE_POOL_SIZE,
    registryRoot: registryRootFromEnv(env),
    defaultTargetFar: compiled.FACEPRINT_MATCHER_DEFAULT_TARGET_FAR,
    exactSearchLimit: compiled.FACEPRINT_MATCHER_EXACT_SEARCH_LIMIT,
    syncIntervalMs: compiled.FACEPRINT_MATCHER_SYNC_INTERVAL_MS,
    indexSnapshots,
    keyDir,
    keyStoreDir: compiled.FACEPRINT_MATCHER_KEY_STORE_DIR ? fromCwd(compiled.FACEPRINT_MATCHER_KEY_STORE_DIR) : join(keyDir, 'data-keys'),
    masterKeyFile: compiled.FACEPRINT_MATCHER_MASTER_KEY_FILE ? fromCwd(compiled.FACEPRINT_MATCHER_MASTER_KEY_FILE) : join(keyDir, 'master.key'),
    hsm,
    signingKeyFile,
    retiredSigningKeysDir: compiled.FACEPRINT_MATCHER_RETIRED_SIGNING_KEYS_DIR ? fromCwd(compiled.FACEPRINT_MATCHER_RETIRED_SIGNING_KEYS_DIR) : join(dirname(signingKeyFile), RETIRED_SIGNING_KEYS_DIR),
    formerKeyDir: join(dataDir, 'keys'),
    erasureScrub: compiled.FACEPRINT_MATCHER_ERASURE_SCRUB,
    generateMasterKey: !compiled.FACEPRINT_MATCHER_MASTER_KEY_FILE && !hsm,
    generateSigningKey: !compiled.FACEPRINT_MATCHER_SIGNING_KEY_FILE,
    retentionSweepMs: compiled.FACEPRINT_MATCHER_RETENTION_SWEEP_MS,
    unusedKeySweepMs: compiled.FACEPRINT_MATCHER_UNUSED_KEY_SWEEP_MS,
    gatewayIdentity: compiled.FACEPRINT_MATCHER_GATEWAY_IDENTITY,
    trainerIdentity: compiled.FACEPRINT_MATCHER_TRAINER_IDENTITY,
    embedderAddress: compiled.FACEPRINT_EMBEDDER_ADDRESS,
    embedderCredentials: clientCredentialsFromEnv(env),
    reembedIntervalMs: compiled.FACEPRINT_MATCHER_REEMBED_INTERVAL_MS,
  });
}

/** Whether `path` is `directory` or inside it. */
function isWithin(path: string, directory: string): boolean {
  const rel = relative(directory, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}
