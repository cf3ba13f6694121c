/**
 * The key store: where the subjects' wrapped data keys live, apart from the gallery database.
 *
 * Crypto-shredding is only as good as the deletion of the key. A database deletes rows
 * logically (the old row stays in its table files until vacuumed, in its write-ahead log until
 * recycled, and in every backup), so the keys are not kept there. Here each wrapped key is one
 * small file: written aside, fsynced and renamed into place; destroyed by overwriting it with
 * random bytes, fsyncing, unlinking it and fsyncing its directory. On a filesystem that writes in
 * place (ext4, xfs) the key's bytes are then gone from the disk as well as from the directory.
 *
 * Written on node:fs rather than a library: no key-value store on npm deletes physically and
 * verifiably, and the job is these few calls. A KMS or Vault (one key per subject, destroyed by
 * the service) implements the same interface.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A data key as stored: sealed by the master key, and which master key sealed it. */
export interface WrappedKey {
  readonly tenantId: string;
  readonly wrappedKey: Buffer;
  readonly masterKeyId: string;
}

/** Stores wrapped data keys, each destroyed for good on erasure. */
export interface DataKeyStore {
  /** Where the keys are, for logs and docs. */
  readonly location: string;
  /** Stores a new key durably (on disk before it returns). A key id is never reused. */
  put(keyId: string, key: WrappedKey): Promise<void>;
  /** The key, or undefined when it does not exist (never made, or destroyed). */
  get(keyId: string): Promise<WrappedKey | undefined>;
  /** Destroys the key durably; false when there was none. Idempotent. */
  destroy(keyId: string): Promise<boolean>;
  /** Every key id held, or only those stored at least `olderThanMs` ago (for the unused-key sweep, checks and tests). */
  keyIds(olderThanMs?: number): Promise<string[]>;
}

const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A key store in a directory: one file per key, in 256 subdirectories by the key id's first two hex digits. */
export class FileKeyStore implements DataKeyStore {
  readonly location: string;

  private constructor(directory: string) {
    this.location = directory;
  }

  /** Opens (creating it, mode 0700) the key store in `directory`. */
  static async open(directory: string): Promise<FileKeyStore> {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    return new FileKeyStore(directory);
  }

  async put(keyId: string, key: WrappedKey): Promise<void> {
    const path = this.#path(keyId);
    const folder = join(path, '..');
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const aside = `${path}.${randomUUID()}.tmp`;
    const body = JSON.stringify({ tenant_id: key.tenantId, master_key_id: key.masterKeyId, wrapped_key: key.wrappedKey.toString('base64') });
    const file = await open(aside, 'wx', 0o600);
    try {
      await file.writeFile(body);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(aside, path);
    await syncDirectory(folder);
  }

  async get(keyId: string): Promise<WrappedKey | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(keyId), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const stored = JSON.parse(text) as { tenant_id: string; master_key_id: string; wrapped_key: string };
    return { tenantId: stored.tenant_id, masterKeyId: stored.master_key_id, wrappedKey: Buffer.from(stored.wrapped_key, 'base64') };
  }

  async destroy(keyId: string): Promise<boolean> {
    const path = this.#path(keyId);
    let file;
    try {
      file = await open(path, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
    try {
      // Overwritten in place before the unlink, so the key's bytes do not stay in freed blocks.
      const { size } = await file.stat();
      await file.write(randomBytes(size), 0, size, 0);
      await file.sync();
    } finally {
      await file.close();
    }
    await rm(path, { force: true });
    await syncDirectory(join(path, '..'));
    return true;
  }

  async keyIds(olderThanMs?: number): Promise<string[]> {
    const ids: string[] = [];
    const before = olderThanMs === undefined ? Infinity : Date.now() - olderThanMs;
    for (const folder of await readdir(this.location)) {
      if (!/^[0-9a-f]{2}$/.test(folder) || !(await stat(join(this.location, folder))).isDirectory()) continue;
      for (const name of await readdir(join(this.location, folder))) {
        if (!name.endsWith('.key') || !KEY_ID.test(name.slice(0, -4))) continue;
        if (before !== Infinity) {
          // A key file is written once (renamed into place), so its mtime is when it was stored.
          const stored = await stat(join(this.location, folder, name)).catch(() => undefined);
          if (!stored || stored.mtimeMs >= before) continue; // gone meanwhile, or too new
        }
        ids.push(name.slice(0, -4));
      }
    }
    return ids.sort();
  }

  #path(keyId: string): string {
    if (!KEY_ID.test(keyId)) throw new Error('a data key id is a lower-case UUID');
    return join(this.location, keyId.slice(0, 2), `${keyId}.key`);
  }
}

/** Makes a rename or unlink in `directory` durable. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
