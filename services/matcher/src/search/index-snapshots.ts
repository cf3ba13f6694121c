/**
 * Index snapshots: this replica's vector index saved to its own directory with the change-log
 * position it reflects, so that a restart loads it and replays the log from there instead of
 * rebuilding every HNSW graph from the database (at a million templates, 20 minutes against
 * seconds).
 *
 * A snapshot is a folder `snapshot-<id>/`: `manifest.json` (the gallery it belongs to, the
 * position, the partitions) and one sealed file per partition. Each file is sealed (AES-256-GCM,
 * sealed-pipe.ts) under a key of its own snapshot, bound to the snapshot, position, partition and
 * its size; that key is stored wrapped by the master key in a key store of the index directory and
 * destroyed in place (overwritten, unlinked) when the snapshot is replaced. Plaintext vectors
 * never reach the disk, and once a snapshot is replaced nothing left of it can be opened: this is
 * how an erased template leaves the snapshots (docs/compliance.md).
 *
 * A snapshot that is missing, cut short, changed, of another gallery, schema or master key is
 * logged and skipped; the next older one is tried, and without any the index is built from the
 * database. A snapshot is never served without the log replayed on top of it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@faceprint/telemetry';
import { KEY_BYTES, type KeyWrapper } from '../compliance/data-keys.js';
import { FileKeyStore, syncDirectory } from '../compliance/key-store.js';
import { readSealed, writeSealed } from './sealed-pipe.js';
import { ExactPartition, HnswPartition, partitionName, type Partition, type PartitionKey, type VectorIndex } from './vector-index.js';

const FORMAT = 'faceprint.index_snapshot.v1';
const SNAPSHOT_DIR = /^snapshot-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** Where a replica keeps its snapshots and when it saves them (docs/matcher.md, configuration.md). */
export interface IndexSnapshotSettings {
  /** This replica's own directory. */
  readonly directory: string;
  /** How often a snapshot is saved while changes arrive, in ms. */
  readonly intervalMs: number;
  /** How soon after a removal one is saved, in ms (an erased template leaves the snapshots). */
  readonly afterRemovalMs: number;
}

/** What a snapshot must have been taken of to be used here. */
export interface SnapshotIdentity {
  /** The database schema of the gallery. */
  readonly schema: string;
  /** The gallery's own id (table gallery_identity): another database, or a restored copy of another, differs. */
  readonly galleryId: string;
}

/** What manifest.json says. */
interface SnapshotManifest {
  /** {@link FORMAT}; a file of another format is read as one and refused. */
  readonly format: string;
  readonly snapshot_id: string;
  readonly created_at: string;
  readonly position: string;
  readonly schema: string;
  readonly gallery_id: string;
  readonly master_key_id: string;
  readonly partitions: {
    readonly tenant_id: string;
    readonly model_name: string;
    readonly model_version: number;
    readonly dim: number;
    readonly mode: 'exact' | 'hnsw';
    readonly count: number;
    readonly file: string;
  }[];
}

/** A snapshot loaded: its partitions and the change-log position they reflect. */
export interface LoadedSnapshot {
  readonly snapshotId: string;
  readonly position: bigint;
  readonly partitions: readonly { key: PartitionKey; partition: Partition }[];
  readonly templates: number;
}

/** What a save wrote. */
export interface SavedSnapshot {
  readonly snapshotId: string;
  readonly position: bigint;
  readonly partitions: number;
  readonly templates: number;
  readonly ms: number;
}

/** The snapshots of one replica's index, in one directory. */
export class IndexSnapshots {
  readonly directory: string;
  readonly #keys: KeyWrapper;
  readonly #keyStore: FileKeyStore;
  readonly #identity: SnapshotIdentity;
  readonly #log: Logger;

  private constructor(directory: string, keys: KeyWrapper, keyStore: FileKeyStore, identity: SnapshotIdentity, log: Logger) {
    this.directory = directory;
    this.#keys = keys;
    this.#keyStore = keyStore;
    this.#identity = identity;
    this.#log = log;
  }

  /** Opens (creating it, mode 0700) the snapshot directory, removing what a save cut short left. */
  static async open(directory: string, keys: KeyWrapper, identity: SnapshotIdentity, log: Logger): Promise<IndexSnapshots> {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const snapshots = new IndexSnapshots(directory, keys, await FileKeyStore.open(join(directory, 'keys')), identity, log);
    for (const name of await readdir(directory)) {
      if (name.endsWith('.tmp') || name.startsWith('.pipe-')) await rm(join(directory, name), { recursive: true, force: true });
    }
    await snapshots.#destroyKeysExcept(await snapshots.#snapshotIds());
    return snapshots;
  }

  /**
   * Saves `index` as it is at `position`. The caller keeps the index unchanged until this returns
   * (IndexSync runs it between change batches). Older snapshots are destroyed once this one is in place.
   */
  async save(index: VectorIndex, position: bigint): Promise<SavedSnapshot> {
    const started = performance.now();
    const snapshotId = randomUUID();
    const folder = join(this.directory, `snapshot-${snapshotId}`);
    const aside = `${folder}.tmp`;
    await mkdir(aside, { mode: 0o700 });
    const key = randomBytes(KEY_BYTES);
    await this.#keyStore.put(snapshotId, { tenantId: '', wrappedKey: await this.#keys.wrap(key, this.#keyContext(snapshotId)), masterKeyId: this.#keys.masterKeyId });
    const partitions: SnapshotManifest['partitions'][number][] = [];
    for (const [i, { key: partitionKey, partition }] of index.entries().entries()) {
      const entry = { tenant_id: partitionKey.tenantId, model_name: partitionKey.modelName, model_version: partitionKey.modelVersion, dim: partition.dim, mode: partition.mode, count: partition.size, file: `partition-${i}.sealed` };
      await writeSealed(join(aside, entry.file), key, partitionContext(snapshotId, position, entry), this.directory, (path) => partition.writeTo(path));
      partitions.push(entry);
    }
    const manifest: SnapshotManifest = {
      format: FORMAT,
      snapshot_id: snapshotId,
      created_at: new Date().toISOString(),
      position: String(position),
      schema: this.#identity.schema,
      gallery_id: this.#identity.galleryId,
      master_key_id: this.#keys.masterKeyId,
      partitions,
    };
    await writeDurably(join(aside, 'manifest.json'), JSON.stringify(manifest, null, 2));
    await syncDirectory(aside);
    await rename(aside, folder);
    await syncDirectory(this.directory);
    await this.#removeAllBut(snapshotId);
    const templates = partitions.reduce((sum, p) => sum + p.count, 0);
    return { snapshotId, position, partitions: partitions.length, templates, ms: performance.now() - started };
  }

  /** The newest snapshot that belongs to this gallery and reads back whole, or undefined (each one skipped is logged, saying why). */
  async loadNewest(): Promise<LoadedSnapshot | undefined> {
    const candidates: SnapshotManifest[] = [];
    for (const snapshotId of await this.#snapshotIds()) {
      try {
        candidates.push(JSON.parse(await readFile(join(this.directory, `snapshot-${snapshotId}`, 'manifest.json'), 'utf8')) as SnapshotManifest);
      } catch (error) {
        this.#log.warn({ snapshot: snapshotId, reason: (error as Error).message }, 'an index snapshot without a readable manifest is skipped');
      }
    }
    candidates.sort((a, b) => (BigInt(b.position) > BigInt(a.position) ? 1 : BigInt(b.position) < BigInt(a.position) ? -1 : b.created_at.localeCompare(a.created_at)));
    for (const manifest of candidates) {
      try {
        return await this.#load(manifest);
      } catch (error) {
        this.#log.warn({ snapshot: manifest.snapshot_id, reason: (error as Error).message }, 'an index snapshot that cannot be used is skipped');
      }
    }
    return undefined;
  }

  async #load(manifest: SnapshotManifest): Promise<LoadedSnapshot> {
    if (manifest.format !== FORMAT) throw new Error(`its format is ${manifest.format}, not ${FORMAT}`);
    if (manifest.schema !== this.#identity.schema || manifest.gallery_id !== this.#identity.galleryId) {
      throw new Error(`it is of gallery ${manifest.gallery_id} (schema ${manifest.schema}), and this is gallery ${this.#identity.galleryId} (schema ${this.#identity.schema})`);
    }
    if (manifest.master_key_id !== this.#keys.masterKeyId) throw new Error(`it was sealed under master key ${manifest.master_key_id}, and this matcher holds ${this.#keys.masterKeyId}`);
    const stored = await this.#keyStore.get(manifest.snapshot_id);
    if (!stored) throw new Error('its key is not in the key store (destroyed with a replaced snapshot)');
    const key = await this.#keys.unwrap(stored.wrappedKey, stored.masterKeyId, this.#keyContext(manifest.snapshot_id));
    const position = BigInt(manifest.position);
    const partitions: { key: PartitionKey; partition: Partition }[] = [];
    for (const entry of manifest.partitions) {
      let partition: Partition | undefined;
      const file = join(this.directory, `snapshot-${manifest.snapshot_id}`, entry.file);
      await readSealed(file, key, partitionContext(manifest.snapshot_id, position, entry), this.directory, (path) => {
        partition = entry.mode === 'hnsw' ? HnswPartition.readFrom(path, entry.dim) : ExactPartition.readFrom(path, entry.dim);
      });
      if (partition!.size !== entry.count) throw new Error(`${entry.file} holds ${partition!.size} templates, and the manifest says ${entry.count}`);
      partitions.push({ key: { tenantId: entry.tenant_id, modelName: entry.model_name, modelVersion: entry.model_version }, partition: partition! });
    }
    return { snapshotId: manifest.snapshot_id, position, partitions, templates: manifest.partitions.reduce((sum, p) => sum + p.count, 0) };
  }

  /** The ids of the complete snapshots in the directory. */
  async #snapshotIds(): Promise<string[]> {
    return (await readdir(this.directory)).flatMap((name) => SNAPSHOT_DIR.exec(name)?.slice(1, 2) ?? []);
  }

  /** Destroys every snapshot but `keep`: its key first (then nothing of it can be opened), then its files. */
  async #removeAllBut(keep: string): Promise<void> {
    await this.#destroyKeysExcept([keep]);
    for (const snapshotId of await this.#snapshotIds()) {
      if (snapshotId !== keep) await rm(join(this.directory, `snapshot-${snapshotId}`), { recursive: true, force: true });
    }
  }

  async #destroyKeysExcept(keep: readonly string[]): Promise<void> {
    for (const keyId of await this.#keyStore.keyIds()) {
      if (!keep.includes(keyId)) await this.#keyStore.destroy(keyId);
    }
  }

  #keyContext(snapshotId: string): string {
    return `faceprint.index_snapshot_key:${this.#identity.galleryId}:${this.#identity.schema}:${snapshotId}`;
  }
}

/** What a partition file is sealed to: its snapshot, position, partition, mode, dimension and size (a manifest changed in any of them does not open). */
function partitionContext(snapshotId: string, position: bigint, entry: SnapshotManifest['partitions'][number]): string {
  const name = partitionName({ tenantId: entry.tenant_id, modelName: entry.model_name, modelVersion: entry.model_version });
  return `faceprint.index_snapshot:${snapshotId}:${position}:${name}:${entry.mode}:${entry.dim}:${entry.count}`;
}

async function writeDurably(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
