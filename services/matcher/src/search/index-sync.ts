/**
 * Keeps this replica's vector index in step with the gallery: load every template from one
 * snapshot at start-up, then apply the change log from the snapshot's position on. Other
 * replicas' writes arrive by LISTEN/NOTIFY (on PostgreSQL) and by a periodic poll (always: a
 * missed notification, a reconnect or the embedded database all fall back to it); this replica's
 * own writes are applied before they are acknowledged.
 */
import { decodeEmbedding } from '@faceprint/contracts';
import type { Logger } from '@faceprint/telemetry';
import type pg from 'pg';
import type { GalleryStore, IndexedTemplate } from '../gallery/gallery-store.js';
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

  constructor(store: GalleryStore, index: VectorIndex, options: IndexSyncOptions) {
    this.#store = store;
    this.#index = index;
    this.#options = options;
  }

  /** The change-log position applied so far. */
  get position(): bigint {
    return this.#position;
  }

  /** Loads the index from a snapshot and starts following the change log. */
  async start(): Promise<{ templates: number; ms: number }> {
    const started = performance.now();
    // Each partition is sized from the snapshot's counts first, so that a large one is built as
    // an HNSW graph page by page, never held as a flat copy as well.
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
    await this.#listen();
    this.#schedulePoll();
    await this.catchUp();
    return { templates, ms: performance.now() - started };
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

  /** Stops following the change log. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#listener?.end().catch(() => undefined);
    await this.#tail;
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
