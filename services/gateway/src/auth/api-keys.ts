/**
 * API keys: each maps to a tenant, a caller id and roles. Callers send `authorization: Bearer
 * <key>`. Two sources, neither holding a secret, only its sha256; a secret is shown once, when it
 * is made:
 * - the static keys file (`FACEPRINT_GATEWAY_API_KEYS_FILE`; in Kubernetes a Secret): the
 *   bootstrap admin key and fixed service keys. The local mesh's first start makes a development
 *   tenant with an operator, a compliance and an admin key (written, readable by this user only,
 *   to `dev-keys.json` beside the keys file, where the CLI finds them);
 * - managed keys, made, rotated and revoked through the ApiKeyService (`faceprint keys ...`) and
 *   kept by the matcher in the gallery database, which all gateway replicas share. A lookup is
 *   cached for {@link MANAGED_KEY_CACHE_MS}: a revoked key stops working at once on the gateway
 *   that revoked it, and within that time on the others.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { API_KEY_ROLES } from '@faceprint/contracts';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { CallerContextSchema, type CallerContext } from '@faceprint/contracts/common';
import { FaceprintError, type CallContext } from '@faceprint/service-kit';
import type { Metadata } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { Logger } from '@faceprint/telemetry';

/** The roles the gateway knows: `operator` for the face API, `compliance` for erasure, export and audit, `admin` for API keys. */
export const ROLES = API_KEY_ROLES;
export type Role = (typeof ROLES)[number];

/** How long a managed key's lookup (found or not) is trusted before the matcher is asked again. */
export const MANAGED_KEY_CACHE_MS = 5_000;
/** The most lookups cached; past it the cache starts again (a flood of made-up keys cannot grow it). */
const MANAGED_KEY_CACHE_MAX = 10_000;

/** Finds a managed key by the sha256 of its secret (the matcher's ApiKeyService); undefined when there is none. */
export type ManagedKeyLookup = (secretSha256: Uint8Array) => Promise<Caller | undefined>;

/** One entry of the keys file. */
export interface ApiKeyEntry {
  /** The caller id recorded in the audit trail (not secret). */
  readonly id: string;
  readonly tenant: string;
  readonly roles: readonly Role[];
  /** Lower-case hex sha256 of the key. */
  readonly sha256: string;
}

/** Who a valid key says the caller is. */
export interface Caller {
  readonly callerId: string;
  readonly tenantId: string;
  readonly roles: readonly Role[];
}

/** The development tenant's keys, as written to `dev-keys.json`. */
export interface DevKeys {
  readonly tenant: string;
  readonly operator: string;
  readonly compliance: string;
  readonly admin: string;
}

/** The development tenant of the local mesh. */
export const DEV_TENANT = 'dev';
const TENANT = /^[A-Za-z0-9._-]{1,64}$/;

const sha256 = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');
/** The sha256 of a secret, as the matcher stores it. */
export const secretSha256 = (key: string): Uint8Array => createHash('sha256').update(key, 'utf8').digest();
/** A new API key: 32 random bytes, base64url, with a prefix that says what it is. */
export const newApiKey = () => `fpk_${randomBytes(32).toString('base64url')}`;

/** The keys of one gateway, looked up by their hash: the static ones, then the managed ones. */
export class ApiKeys {
  readonly #byHash: ReadonlyMap<string, ApiKeyEntry>;
  readonly #managed: ManagedKeyLookup | undefined;
  readonly #cache = new Map<string, { caller: Caller | undefined; until: number }>();

  constructor(entries: readonly ApiKeyEntry[], managed?: ManagedKeyLookup) {
    this.#byHash = new Map(entries.map((entry) => [entry.sha256, entry]));
    this.#managed = managed;
  }

  /** These static keys, with managed keys looked up by `managed`. */
  withManagedKeys(managed: ManagedKeyLookup): ApiKeys {
    return new ApiKeys([...this.#byHash.values()], managed);
  }

  /** Whether the static keys file has a key of this id in this tenant (a managed key may not take its id). */
  hasStaticKey(tenantId: string, keyId: string): boolean {
    return this.staticKeys(tenantId).some((entry) => entry.id === keyId);
  }

  /** The keys file's keys of a tenant (their hashes stay here), by id. */
  staticKeys(tenantId: string): ApiKeyEntry[] {
    return [...this.#byHash.values()].filter((entry) => entry.tenant === tenantId).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Drops cached lookups of a managed key (after this gateway rotated or revoked it). */
  forget(tenantId: string, keyId: string): void {
    for (const [hash, { caller }] of this.#cache) if (caller?.tenantId === tenantId && caller.callerId === keyId) this.#cache.delete(hash);
  }

  /** Reads a keys file (`{"keys": [ApiKeyEntry, ...]}`), checking every entry. */
  static async load(path: string): Promise<ApiKeys> {
    let parsed: { keys?: unknown };
    try {
      parsed = JSON.parse(await readFile(path, 'utf8')) as { keys?: unknown };
    } catch (error) {
      throw new Error(`cannot read the API keys file ${path}: ${(error as Error).message}`, { cause: error });
    }
    if (!Array.isArray(parsed.keys)) throw new Error(`${path}: expected {"keys": [...]}`);
    const entries = parsed.keys.map((raw: unknown, i: number) => {
      const entry = raw as Partial<ApiKeyEntry>;
      const where = `${path}: keys[${i}]`;
      if (typeof entry.id !== 'string' || entry.id.length === 0 || entry.id.length > 128) throw new Error(`${where}.id must be 1-128 characters`);
      if (typeof entry.tenant !== 'string' || !TENANT.test(entry.tenant)) throw new Error(`${where}.tenant must be 1-64 of [A-Za-z0-9._-]`);
      if (!Array.isArray(entry.roles) || entry.roles.length === 0 || !entry.roles.every((r: unknown) => (ROLES as readonly unknown[]).includes(r))) {
        throw new Error(`${where}.roles must list some of ${ROLES.join(', ')}`);
      }
      if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) throw new Error(`${where}.sha256 must be the lower-case hex sha256 of the key`);
      return entry as ApiKeyEntry;
    });
    return new ApiKeys(entries);
  }

  /** The caller of a request: UNAUTHENTICATED without a valid `authorization: Bearer <key>`. */
  async authenticate(metadata: Metadata): Promise<Caller> {
    const header = metadata.get('authorization')[0];
    if (header === undefined || header === '') throw new FaceprintError(status.UNAUTHENTICATED, 'an API key is required: send the metadata "authorization: Bearer <key>"');
    // Sent, but not as one bearer key ("Bearer Bearer x", "Basic ...", a bare key): malformed, not missing.
    const match = typeof header === 'string' ? /^Bearer (\S+)$/.exec(header) : null;
    if (!match) throw new FaceprintError(status.UNAUTHENTICATED, 'the authorization metadata is not valid: it must be "Bearer <key>", one key after one "Bearer "');
    const hash = sha256(match[1]!);
    const entry = this.#byHash.get(hash);
    if (entry) return { callerId: entry.id, tenantId: entry.tenant, roles: entry.roles };
    const caller = await this.#lookUpManaged(hash);
    if (!caller) throw new FaceprintError(status.UNAUTHENTICATED, 'the API key is not valid');
    return caller;
  }

  async #lookUpManaged(hash: string): Promise<Caller | undefined> {
    if (!this.#managed) return undefined;
    const cached = this.#cache.get(hash);
    if (cached && cached.until > Date.now()) return cached.caller;
    const caller = await this.#managed(Buffer.from(hash, 'hex'));
    if (this.#cache.size >= MANAGED_KEY_CACHE_MAX) this.#cache.clear();
    this.#cache.set(hash, { caller, until: Date.now() + MANAGED_KEY_CACHE_MS });
    return caller;
  }
}

/**
 * Authenticates a call and checks that its key holds `role` (UNAUTHENTICATED, PERMISSION_DENIED);
 * returns the context the matcher scopes and audits the call by: tenant, caller id and roles from
 * the key, and the client's `x-request-id` (or a new one).
 */
export async function authorize(keys: ApiKeys, ctx: CallContext, role: Role): Promise<CallerContext> {
  const caller = await keys.authenticate(ctx.metadata);
  if (!caller.roles.includes(role)) throw FaceprintError.permissionDenied(role, `this call needs the "${role}" role; the API key "${caller.callerId}" has ${caller.roles.join(', ')}`);
  const requestId = ctx.metadata.get('x-request-id')[0];
  return create(CallerContextSchema, {
    tenantId: caller.tenantId,
    callerId: caller.callerId,
    roles: [...caller.roles],
    requestId: typeof requestId === 'string' && requestId ? requestId.slice(0, 128) : randomUUID(),
  });
}

/**
 * Makes the development tenant's keys file and `dev-keys.json` beside it, unless the keys file
 * exists. Written aside and linked into place, so two starts at once agree on one set. A data
 * directory from before the admin role gets an admin key added (development keys only).
 */
export async function ensureDevKeys(keysFile: string, log: Logger): Promise<void> {
  const devKeysFile = join(dirname(keysFile), 'dev-keys.json');
  try {
    await readFile(keysFile);
    await addDevAdminKey(keysFile, devKeysFile, log);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(keysFile), { recursive: true, mode: 0o700 });
  const dev: DevKeys = { tenant: DEV_TENANT, operator: newApiKey(), compliance: newApiKey(), admin: newApiKey() };
  const entries: ApiKeyEntry[] = [
    { id: 'dev-operator', tenant: DEV_TENANT, roles: ['operator'], sha256: sha256(dev.operator) },
    { id: 'dev-compliance', tenant: DEV_TENANT, roles: ['compliance'], sha256: sha256(dev.compliance) },
    { id: 'dev-admin', tenant: DEV_TENANT, roles: ['admin'], sha256: sha256(dev.admin) },
  ];
  const aside = `${keysFile}.${process.pid}.tmp`;
  const devAside = `${devKeysFile}.${process.pid}.tmp`;
  await writeFile(aside, `${JSON.stringify({ keys: entries }, null, 2)}\n`, { mode: 0o600 });
  await writeFile(devAside, `${JSON.stringify(dev, null, 2)}\n`, { mode: 0o600 });
  try {
    // The process whose keys file lands also places the matching dev-keys.json.
    await link(aside, keysFile);
    await rename(devAside, devKeysFile);
    log.warn({ keysFile, devKeysFile }, 'made a development tenant with an operator, a compliance and an admin API key (for local use only)');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await rm(aside, { force: true });
    await rm(devAside, { force: true });
  }
}

/** Adds an admin key to development keys made before the admin role existed. */
async function addDevAdminKey(keysFile: string, devKeysFile: string, log: Logger): Promise<void> {
  let dev: Partial<DevKeys>;
  try {
    dev = JSON.parse(await readFile(devKeysFile, 'utf8')) as Partial<DevKeys>;
  } catch {
    return; // not the local mesh's development keys
  }
  if (dev.admin || dev.tenant !== DEV_TENANT) return;
  const file = JSON.parse(await readFile(keysFile, 'utf8')) as { keys: ApiKeyEntry[] };
  const admin = newApiKey();
  file.keys.push({ id: 'dev-admin', tenant: DEV_TENANT, roles: ['admin'], sha256: sha256(admin) });
  const aside = `${keysFile}.${process.pid}.tmp`;
  const devAside = `${devKeysFile}.${process.pid}.tmp`;
  await writeFile(aside, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  await writeFile(devAside, `${JSON.stringify({ ...dev, admin }, null, 2)}\n`, { mode: 0o600 });
  await rename(aside, keysFile);
  await rename(devAside, devKeysFile);
  log.warn({ keysFile, devKeysFile }, 'added an admin API key to the development tenant (for local use only)');
}
