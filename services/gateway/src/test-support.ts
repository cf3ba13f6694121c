/** Test support for the gateway: an API keys file with keys made for the test. */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newApiKey, type Role } from './auth/api-keys.js';

/** Writes a keys file with one key per `{id, tenant, roles}`; returns the file and each key by id. */
export function writeTestApiKeys(entries: readonly { id: string; tenant: string; roles: Role[] }[]): { file: string; keys: Record<string, string> } {
  const keys = Object.fromEntries(entries.map((e) => [e.id, newApiKey()]));
  const file = join(mkdtempSync(join(tmpdir(), 'faceprint-gateway-keys-')), 'api-keys.json');
  const listed = entries.map((e) => ({ ...e, sha256: createHash('sha256').update(keys[e.id]!).digest('hex') }));
  writeFileSync(file, JSON.stringify({ keys: listed }), { mode: 0o600 });
  return { file, keys };
}

/** Call options that authenticate with `key`. */
export const withKey = (key: string) => ({ metadata: { authorization: `Bearer ${key}` } });
