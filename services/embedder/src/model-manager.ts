/**
 * Hot model swap. The manager follows the registry's `current` pointer: a newly promoted version
 * is loaded, verified and warmed up beside the serving one, then becomes the serving model in one
 * assignment. Calls that already chose the old version finish on it; the old session is released
 * once its last queued crop has run. A version that fails to load leaves the serving one in place.
 */
import type { Logger } from '@faceprint/telemetry';
import type { ModelRegistry } from '@faceprint/model-registry';
import type { OrtSettings } from '@faceprint/onnx';
import { loadEmbeddingModel, type EmbeddingModel } from './embedding-model.js';

/** A version that could not be loaded. */
export interface FailedLoad {
  readonly version: number;
  readonly error: string;
  readonly at: Date;
}

/** Serves one registry model name. */
export class ModelManager {
  readonly #registry: ModelRegistry;
  readonly #name: string;
  readonly #settings: OrtSettings;
  readonly #log: Logger;
  #serving: EmbeddingModel | undefined;
  readonly #retiring = new Set<EmbeddingModel>();
  #loading: number | undefined;
  #failed: FailedLoad | undefined;
  #stopWatching: (() => void) | undefined;
  #reaper: NodeJS.Timeout | undefined;

  constructor(registry: ModelRegistry, name: string, settings: OrtSettings, log: Logger) {
    this.#registry = registry;
    this.#name = name;
    this.#settings = settings;
    this.#log = log;
  }

  /** The serving model, or undefined before the first load. */
  get serving(): EmbeddingModel | undefined {
    return this.#serving;
  }

  /** Versions still finishing work after a swap. */
  get retiring(): readonly EmbeddingModel[] {
    return [...this.#retiring];
  }

  /** The version being loaded now, if any. */
  get loading(): number | undefined {
    return this.#loading;
  }

  /** The last version that failed to load, if any. */
  get failed(): FailedLoad | undefined {
    return this.#failed;
  }

  /**
   * Loads the current version (resolves when it serves) and starts following promotions; or, with
   * `pinnedVersion`, loads that version and stays on it.
   */
  async start(watchIntervalMs: number, pinnedVersion?: number): Promise<void> {
    await this.#swapTo(pinnedVersion);
    if (!this.#serving) throw new Error(`${this.#name}: ${this.#failed?.error ?? 'no model loaded'}`);
    if (pinnedVersion === undefined) this.#stopWatching = this.#registry.watchCurrent(
      this.#name,
      (version) => {
        if (version !== undefined && version !== this.#serving?.ref.version && version !== this.#loading) void this.#swapTo(version);
      },
      { intervalMs: watchIntervalMs },
    );
    this.#reaper = setInterval(() => void this.#releaseIdle(), 200);
    this.#reaper.unref();
  }

  async #swapTo(version: number | undefined): Promise<void> {
    this.#loading = version ?? -1;
    try {
      const next = await loadEmbeddingModel(this.#registry, this.#name, version, this.#settings);
      const previous = this.#serving;
      this.#serving = next; // the swap: new calls choose `next` from here on
      this.#failed = undefined;
      if (previous) this.#retiring.add(previous);
      this.#log.info({ model: this.#name, version: next.ref.version, previous: previous?.ref.version }, 'embedder model serving');
    } catch (error) {
      this.#failed = { version: version ?? 0, error: (error as Error).message, at: new Date() };
      this.#log.error({ model: this.#name, version, err: error }, 'embedder model failed to load; the serving model stays');
    } finally {
      this.#loading = undefined;
    }
  }

  async #releaseIdle(): Promise<void> {
    for (const model of this.#retiring) {
      if (model.pending > 0) continue;
      this.#retiring.delete(model);
      await model.release();
      this.#log.info({ model: this.#name, version: model.ref.version }, 'retired embedder model released');
    }
  }

  /** Stops following promotions and releases every session. */
  async stop(): Promise<void> {
    this.#stopWatching?.();
    clearInterval(this.#reaper);
    await Promise.all([...this.#retiring, ...(this.#serving ? [this.#serving] : [])].map((m) => m.release()));
    this.#retiring.clear();
    this.#serving = undefined;
  }
}
