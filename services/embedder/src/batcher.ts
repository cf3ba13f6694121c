/**
 * Dynamic batching: crops from concurrent calls wait in one queue and run together, when a batch
 * is full or the oldest crop has waited `maxDelayMs`; one batch runs at a time, so the crops that
 * arrive while it runs form the next one. Crops of different model versions never share a batch.
 * A full queue refuses new work at once (RESOURCE_EXHAUSTED) instead of growing.
 */
import type { AlignedFace } from '@faceprint/contracts/common';
import { FaceprintError } from '@faceprint/service-kit';
import type { EmbeddingModel } from './embedding-model.js';

interface QueuedCrop {
  readonly model: EmbeddingModel;
  readonly face: AlignedFace;
  readonly enqueuedAt: number;
  resolve(embedding: Float32Array): void;
  reject(error: unknown): void;
}

/** Batching limits. */
export interface BatcherSettings {
  /** The largest batch (1: no batching). */
  readonly maxBatch: number;
  /** The longest the oldest crop waits for a fuller batch, in ms. */
  readonly maxDelayMs: number;
  /** The most crops that may wait. */
  readonly maxQueue: number;
}

/** Observes each batch run, for metrics. */
export type BatchObserver = (size: number, waitMs: number, runMs: number) => void;

/** The queue and the loop that drains it, one batch at a time. */
export class Batcher {
  readonly #settings: BatcherSettings;
  readonly #observe: BatchObserver;
  readonly #queue: QueuedCrop[] = [];
  #running = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(settings: BatcherSettings, observe: BatchObserver = () => undefined) {
    this.#settings = settings;
    this.#observe = observe;
  }

  /** Crops waiting. */
  get depth(): number {
    return this.#queue.length;
  }

  /**
   * Queues the (checked) crops of one call on `model`, all or none, and resolves with their
   * embeddings in order. Crops are preprocessed when their batch runs, straight into its tensor.
   */
  submit(model: EmbeddingModel, faces: readonly AlignedFace[]): Promise<Float32Array[]> {
    if (this.#queue.length + faces.length > this.#settings.maxQueue) {
      throw FaceprintError.resourceExhausted('embedder-queue', `the embedding queue is full (${this.#queue.length} of ${this.#settings.maxQueue} crops waiting)`, 50);
    }
    const now = performance.now();
    const results = faces.map(
      (face) =>
        new Promise<Float32Array>((resolve, reject) => {
          this.#queue.push({ model, face, enqueuedAt: now, resolve, reject });
        }),
    );
    model.pending += faces.length;
    this.#schedule();
    return Promise.all(results);
  }

  #schedule(): void {
    if (this.#running || this.#queue.length === 0) return;
    const head = this.#queue[0]!;
    const sameModel = this.#queue.filter((c) => c.model === head.model).length;
    const waited = performance.now() - head.enqueuedAt;
    if (sameModel >= this.#settings.maxBatch || waited >= this.#settings.maxDelayMs) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#runBatch();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, this.#settings.maxDelayMs - waited);
    }
  }

  async #runBatch(): Promise<void> {
    this.#running = true;
    const model = this.#queue[0]!.model;
    const batch: QueuedCrop[] = [];
    for (let i = 0; i < this.#queue.length && batch.length < this.#settings.maxBatch; ) {
      if (this.#queue[i]!.model === model) batch.push(...this.#queue.splice(i, 1));
      else i++;
    }
    const started = performance.now();
    try {
      const embeddings = await model.run(model.preprocess(batch.map((crop) => crop.face)), batch.length);
      batch.forEach((crop, n) => crop.resolve(embeddings[n]!));
    } catch (error) {
      batch.forEach((crop) => crop.reject(error));
    } finally {
      model.pending -= batch.length;
      this.#observe(batch.length, started - batch[0]!.enqueuedAt, performance.now() - started);
      this.#running = false;
      this.#schedule();
    }
  }
}
