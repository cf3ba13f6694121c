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

/** The next batch: crops preprocessed into its tensor as they arrive, while the batch before runs. */
interface StagedBatch {
  readonly model: EmbeddingModel;
  readonly tensor: Float32Array;
  readonly crops: QueuedCrop[];
}

/** The queue and the loop that drains it, one batch at a time. */
export class Batcher {
  readonly #settings: BatcherSettings;
  readonly #observe: BatchObserver;
  /** Crops waiting for room in the staged batch (there are more than one batch holds, or another model's). */
  readonly #queue: QueuedCrop[] = [];
  #staged: StagedBatch | undefined;
  #running = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(settings: BatcherSettings, observe: BatchObserver = () => undefined) {
    this.#settings = settings;
    this.#observe = observe;
  }

  /** Crops waiting. */
  get depth(): number {
    return this.#queue.length + (this.#staged?.crops.length ?? 0);
  }

  /**
   * Queues the (checked) crops of one call on `model`, all or none, and resolves with their
   * embeddings in order.
   */
  submit(model: EmbeddingModel, faces: readonly AlignedFace[]): Promise<Float32Array[]> {
    if (this.depth + faces.length > this.#settings.maxQueue) {
      throw FaceprintError.resourceExhausted('embedder-queue', `the embedding queue is full (${this.depth} of ${this.#settings.maxQueue} crops waiting)`, 50);
    }
    const now = performance.now();
    const results = faces.map(
      (face) =>
        new Promise<Float32Array>((resolve, reject) => {
          this.#queue.push({ model, face, enqueuedAt: now, resolve, reject });
        }),
    );
    model.pending += faces.length;
    this.#stage();
    this.#schedule();
    return Promise.all(results);
  }

  /**
   * Moves queued crops of the staged batch's model (the oldest crop's, when none is staged) into
   * it, preprocessing each into its tensor. Done on arrival, the work overlaps the running batch
   * instead of holding up the next one: the inference thread never waits for preprocessing.
   */
  #stage(): void {
    if (this.#queue.length === 0) return;
    this.#staged ??= { model: this.#queue[0]!.model, tensor: this.#queue[0]!.model.batchTensor(this.#settings.maxBatch), crops: [] };
    const staged = this.#staged;
    for (let i = 0; i < this.#queue.length && staged.crops.length < this.#settings.maxBatch; ) {
      if (this.#queue[i]!.model !== staged.model) {
        i++;
        continue;
      }
      const [crop] = this.#queue.splice(i, 1);
      staged.model.writeCrop(crop!.face, staged.tensor, staged.crops.length);
      staged.crops.push(crop!);
    }
  }

  #schedule(): void {
    if (this.#running || !this.#staged) return;
    const waited = performance.now() - this.#staged.crops[0]!.enqueuedAt;
    if (this.#staged.crops.length >= this.#settings.maxBatch || waited >= this.#settings.maxDelayMs) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#runBatch(this.#staged);
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, this.#settings.maxDelayMs - waited);
    }
  }

  async #runBatch({ model, tensor, crops }: StagedBatch): Promise<void> {
    this.#running = true;
    this.#staged = undefined;
    const started = performance.now();
    try {
      const running = model.run(tensor, crops.length);
      this.#stage(); // the next batch forms while this one runs
      const embeddings = await running;
      crops.forEach((crop, n) => crop.resolve(embeddings[n]!));
    } catch (error) {
      crops.forEach((crop) => crop.reject(error));
    } finally {
      model.pending -= crops.length;
      this.#observe(crops.length, started - crops[0]!.enqueuedAt, performance.now() - started);
      this.#running = false;
      this.#schedule();
    }
  }
}
