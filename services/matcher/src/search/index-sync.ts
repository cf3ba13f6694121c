/**
 * Keeps this replica's vector index in step with the gallery: at start-up load the newest index
 * snapshot this replica saved (index-snapshots.ts), or else every template from one consistent
 * read of the database, then apply the change log from that position on. Other
 * replicas' writes arrive by LISTEN/NOTIFY (on PostgreSQL) and by a periodic poll (always: a
 * missed notification, a reconnect or the embedded database all fall back to it); this replica's
 * own writes are applied before they are acknowledged.
 */
import { decodeEmbedding } from '@faceprint/contracts';
import type { Logger } from '@faceprint/telemetry';
import type pg from 'pg';
import type { GalleryStore, IndexedTemplate } from '../gallery/gallery-store.js';
import type { IndexSnapshots, IndexSnapshotSettings } from './index-snapshots.js';
import { partitionName, type VectorIndex } from './vector-index.js';

const CHANGE_PAGE = 1_000;

/** Options of {@link IndexSync}. */
export interface IndexSyncOptions {
  /** How often to poll the change log without a notification, in ms. */
  readonly intervalMs: number;
  /** Opens a LISTEN connection, or undefined where notifications are unavailable. */
  readonly connectListener: () => Promise<pg.Client> | undefined;
  /** Called with the age of each applied change, in ms (the replica's sync lag). */
  readonly onApplied?: (lagMs: number) => void;
  /**
   * Index snapshots: loaded at start, saved every `intervalMs` while changes arrive, within
   * `afterRemovalMs` of a removal (so an erased template leaves the snapshots soon), after a start
   * that did not begin from an up-to-date one, and at stop.
   */
  readonly snapshots?: IndexSnapshotSettings & { readonly store: IndexSnapshots };
  readonly log: Logger;
}

/** Follows the change log into a {@link VectorIndex}. */
export class IndexSync {
  readonly #store: GalleryStore;
  readonly #index: VectorIndex;
  readonly #options: IndexSyncOptions;
  #position = 0n;
  #queued: Promise<void> | undefined;
  #tail: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #listener: pg.Client | undefined;
  #stopped = false;
  /** The position of the last snapshot saved or loaded; undefined before the first. */
  #snapshotPosition: bigint | undefined;
  #snapshotTimer: NodeJS.Timeout | undefined;
  #removalSnapshotTimer: NodeJS.Timeout | undefined;

  constructor(store: GalleryStore, index: VectorIndex, options: IndexSyncOptions) {
    this.#store = store;
    this.#index = index;
    this.#options = options;
  }

  /** The change-log position applied so far. */
  get position(): bigint {
    return this.#position;
  }

  /**
   * Loads the index (from this replica's newest index snapshot, or else from the database) and
   * starts following the change log; resolves once every change committed before it is applied.
   */
  async start(): Promise<{ templates: number; ms: number; from: 'snapshot' | 'database' }> {
    const started = performance.now();
    const restored = await this.#options.snapshots?.store.loadNewest();
    if (restored) {
      for (const { key, partition } of restored.partitions) this.#index.restore(key, partition);
      this.#position = restored.position;
      this.#snapshotPosition = restored.position;
    }
    const templates = restored?.templates ?? (await this.#loadFromDatabase());
    await this.#listen();
    this.#schedulePoll();
    await this.catchUp();
    if (this.#options.snapshots) {
      // Saved now unless the loaded one is current: the next start is then fast too, and one that
      // held templates erased since is replaced (and so destroyed) at once.
      void this.#saveSnapshot();
      this.#scheduleSnapshots();
    }
    return { templates, ms: performance.now() - started, from: restored ? 'snapshot' : 'database' };
  }

  /** Loads every template from one consistent read of the database; returns how many. */
  async #loadFromDatabase(): Promise<number> {
    // Each partition is sized from the counts first, so that a large one is built as an HNSW
    // graph page by page, never held as a flat copy as well.
    let templates = 0;
    this.#position = await this.#store.readSnapshot({
      onCounts: (counts) => {
        for (const c of counts) this.#index.reserve({ tenantId: c.tenantId, modelName: c.modelName, modelVersion: c.modelVersion }, c.dim, c.count);
      },
      onPage: (page) => {
        this.#apply(page);
        templates += page.length;
      },
    });
    return templates;
  }

  /**
   * Applies every change committed before this call. Concurrent callers share a run that has not
   * started yet; a run that has started may have read too early, so a new one is queued.
   */
  catchUp(): Promise<void> {
    if (this.#queued) return this.#queued;
    const run = this.#tail.then(() => {
      this.#queued = undefined;
      return this.#applyChanges();
    });
    this.#queued = run;
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Stops following the change log, saving a snapshot first when changes arrived since the last. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#snapshotTimer);
    clearTimeout(this.#removalSnapshotTimer);
    await this.#listener?.end().catch(() => undefined);
    await this.#tail;
    if (this.#options.snapshots) await this.#saveSnapshot();
  }

  /**
   * Saves a snapshot between change batches (none is applied while it is written), unless the last
   * one is of this position already (a save asked for twice); a failure is logged, never thrown.
   */
  #saveSnapshot(): Promise<void> {
    const run = this.#tail.then(async () => {
      const { store } = this.#options.snapshots!;
      if (this.#snapshotPosition === this.#position) return;
      try {
        const saved = await store.save(this.#index, this.#position);
        this.#snapshotPosition = saved.position;
        this.#options.log.info({ snapshot: saved.snapshotId, position: String(saved.position), partitions: saved.partitions, templates: saved.templates, ms: Math.round(saved.ms) }, 'saved an index snapshot');
      } catch (error) {
        this.#options.log.warn({ err: error, directory: store.directory }, 'saving an index snapshot failed; the index is not affected, and the next save tries again');
      }
    });
    this.#tail = run;
    return run;
  }

  #scheduleSnapshots(): void {
    const { intervalMs } = this.#options.snapshots!;
    this.#snapshotTimer = setInterval(() => void this.#saveSnapshot(), intervalMs);
    this.#snapshotTimer.unref();
  }

  /** After a removal: a snapshot within afterRemovalMs, so that the removed vector leaves the snapshots. */
  #snapshotAfterRemoval(): void {
    if (!this.#options.snapshots || this.#removalSnapshotTimer || this.#stopped) return;
    this.#removalSnapshotTimer = setTimeout(() => {
      this.#removalSnapshotTimer = undefined;
      void this.#saveSnapshot();
    }, this.#options.snapshots.afterRemovalMs);
    this.#removalSnapshotTimer.unref();
  }

  async #applyChanges(): Promise<void> {
    for (;;) {
      const changes = await this.#store.changesAfter(this.#position, CHANGE_PAGE);
      if (changes.length === 0) return;
      const additions = await this.#store.templatesByKey(changes.filter((c) => c.op === 'add').map((c) => c.templatePk));
      const vectors = new Map(additions.map((t) => [t.templatePk, t]));
      for (const change of changes) {
        const partition = { tenantId: change.tenantId, modelName: change.modelName, modelVersion: change.modelVersion };
        if (change.op === 'remove') {
          this.#index.remove(partition, [change.templatePk]);
          this.#snapshotAfterRemoval();
        } else {
          // A template added and removed since has no row: its removal follows in the log.
          const template = vectors.get(change.templatePk);
          if (template) this.#apply([template]);
        }
        this.#position = change.seq;
        this.#options.onApplied?.(Date.now() - change.changeTime.getTime());
      }
      if (changes.length < CHANGE_PAGE) return;
    }
  }

  /** Adds templates to their partitions, one batch per partition (a graph adds a batch in parallel). */
  #apply(templates: readonly IndexedTemplate[]): void {
    const batches = new Map<string, IndexedTemplate[]>();
    for (const template of templates) {
      const name = partitionName(template);
      let batch = batches.get(name);
      if (!batch) batches.set(name, (batch = []));
      batch.push(template);
    }
    for (const batch of batches.values()) {
      const { tenantId, modelName, modelVersion, dim } = batch[0]!;
      const vectors = new Float32Array(batch.length * dim);
      batch.forEach((t, i) => vectors.set(decodeEmbedding(t.vector, dim), i * dim));
      this.#index.add({ tenantId, modelName, modelVersion }, dim, batch.map((t) => t.templatePk), vectors);
    }
  }

  #schedulePoll(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.catchUp()
        .catch((error: unknown) => this.#options.log.warn({ err: error }, 'reading the template change log failed; retrying'))
        .finally(() => this.#schedulePoll());
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  /** LISTENs for change notifications, reconnecting after a failure (the poll covers the gap). */
  async #listen(): Promise<void> {
    if (this.#stopped) return;
    const connecting = this.#options.connectListener();
    if (!connecting) return;
    try {
      const client = await connecting;
      client.on('notification', () => void this.catchUp().catch(() => undefined));
      client.on('error', (error) => {
        this.#options.log.warn({ err: error }, 'the change-notification connection failed; reconnecting');
        this.#listener = undefined;
        void client.end().catch(() => undefined);
        setTimeout(() => void this.#listen(), 1_000).unref();
      });
      await client.query(`LISTEN ${this.#store.changeChannel}`);
      this.#listener = client;
    } catch (error) {
      this.#options.log.warn({ err: error }, 'could not listen for change notifications; polling until it can');
      setTimeout(() => void this.#listen(), 1_000).unref();
    }
  }
}
