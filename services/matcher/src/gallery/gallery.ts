/**
 * The gallery as one running thing: the database (opened and migrated), its store, and this
 * replica's vector index following the change log.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@faceprint/telemetry';
import { isDatabaseUnreachable } from '../database/database-errors.js';
import { openDatabase, type Database, type DatabaseOptions } from '../database/database.js';
import { ErasedRowsScrubber, type ScrubMode } from '../database/erased-rows-scrub.js';
import { migrate } from '../database/migrations.js';
import { IndexSnapshots, type IndexSnapshotSettings } from '../search/index-snapshots.js';
import { IndexSync } from '../search/index-sync.js';
import { VectorIndex } from '../search/vector-index.js';
import { AuditLog } from '../compliance/audit-log.js';
import type { KeyWrapper } from '../compliance/data-keys.js';
import { ErasureLog } from '../compliance/erasure-log.js';
import { moveKeysOutOfGallery } from '../compliance/key-move.js';
import type { DataKeyStore } from '../compliance/key-store.js';
import { GalleryStore } from './gallery-store.js';

/** How long start-up keeps retrying an unreachable PostgreSQL before it gives up. */
const CONNECT_RETRY_MS = 60_000;

/** Options of {@link startGallery}. */
export interface GalleryOptions extends DatabaseOptions {
  /** Partitions below this size are searched exactly. */
  readonly exactSearchLimit: number;
  /** The change-log poll interval, in ms. */
  readonly syncIntervalMs: number;
  /** Called with each applied change's age (sync lag), in ms. */
  readonly onSyncLag?: (lagMs: number) => void;
  /** How far erasures reach into the database's files. */
  readonly erasureScrub: ScrubMode;
  /** Index snapshots (search/index-snapshots.ts): this replica's directory and schedule; undefined: none. */
  readonly indexSnapshots?: IndexSnapshotSettings;
}

/** What keeps the subjects' data keys, and what wraps them. */
export interface GalleryKeys {
  /** The master key (or a KMS): wraps data keys and erasure receipts. */
  readonly wrapper: KeyWrapper;
  /** Where the wrapped data keys are, apart from the database. */
  readonly store: DataKeyStore;
}

/** A started gallery. */
export interface Gallery {
  readonly db: Database;
  readonly store: GalleryStore;
  readonly audit: AuditLog;
  readonly index: VectorIndex;
  readonly sync: IndexSync;
  readonly erasureLog: ErasureLog;
  readonly scrubber: ErasedRowsScrubber;
  close(): Promise<void>;
}

/**
 * Opens and migrates the database (retrying PostgreSQL for a minute), moves keys and receipts an
 * older gallery kept in it to the key store and erasure log, finishes erasures a stop interrupted,
 * seals any templates stored before sealing existed, then loads the index.
 */
export async function startGallery(options: GalleryOptions, keys: GalleryKeys, log: Logger): Promise<Gallery> {
  const db = await openMigrated(options, log);
  try {
    const store = new GalleryStore(db, keys.wrapper, keys.store);
    const erasureLog = new ErasureLog(keys.wrapper);
    const scrubber = new ErasedRowsScrubber(db, options.erasureScrub, log);
    await scrubber.reach();
    const moved = await moveKeysOutOfGallery(db, keys.store, erasureLog, log);
    const pending = await store.destroyErasedKeys();
    if (pending.length > 0) log.info({ erasures: pending.length }, 'finished erasures that committed before the last stop');
    if (moved.keys + moved.receipts + pending.length > 0) await scrubber.scrub();
    await store.settleKeyDestructions(pending);
    const sealed = await store.sealPlaintextTemplates();
    if (sealed > 0) log.info({ templates: sealed }, 'sealed templates stored before encryption at rest');
    const index = new VectorIndex(options.exactSearchLimit);
    const snapshots = options.indexSnapshots && {
      ...options.indexSnapshots,
      store: await IndexSnapshots.open(options.indexSnapshots.directory, keys.wrapper, { schema: db.schema, galleryId: await store.galleryId() }, log),
    };
    const sync = new IndexSync(store, index, {
      intervalMs: options.syncIntervalMs,
      connectListener: () => db.connectListener(),
      onApplied: options.onSyncLag,
      snapshots,
      log,
    });
    const loaded = await sync.start();
    log.info({ templates: loaded.templates, from: loaded.from, ms: Math.round(loaded.ms), rssBytes: process.memoryUsage().rss }, 'gallery index loaded');
    return {
      db,
      store,
      audit: new AuditLog(db.pool),
      index,
      sync,
      erasureLog,
      scrubber,
      close: async () => {
        await sync.stop();
        await db.close();
      },
    };
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
}

async function openMigrated(options: GalleryOptions, log: Logger): Promise<Database> {
  const deadline = Date.now() + CONNECT_RETRY_MS;
  for (;;) {
    const db = await openDatabase(options, log);
    try {
      const applied = await migrate(db.pool, db.schema);
      if (applied.length > 0) log.info({ applied, schema: db.schema }, 'gallery migrations applied');
      return db;
    } catch (error) {
      await db.close().catch(() => undefined);
      if (db.kind === 'embedded' || !isDatabaseUnreachable(error) || Date.now() > deadline) throw error;
      log.warn({ err: error }, 'the gallery database is not reachable yet; retrying');
      await sleep(2_000);
    }
  }
}
