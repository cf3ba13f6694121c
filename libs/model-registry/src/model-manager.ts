/**
 * Hot model swap, for any service that serves one registry model (the embedder, liveness). The
 * manager follows the registry's `current` pointer: a newly promoted version is loaded, verified
 * and warmed up beside the serving one (by the service's own `load`), then becomes the serving
 * model in one assignment. Calls that already chose the old version finish on it; the old one is
 * released once its last queued work has run. A version that fails to load leaves the serving one
 * in place.
 */
import type { ModelRef } from '@faceprint/contracts/common';
import type { ModelRegistry } from './registry.js';

/** A loaded model version as a service holds it. */
export interface ServedModel {
  /** The version. */
  readonly ref: ModelRef;
  /** Work queued or running on it: it is released only at 0. */
  readonly pending: number;
  /** Releases its session. */
  release(): Promise<void>;
}

/** A version that could not be loaded. */
export interface FailedLoad {
  readonly version: number;
  readonly error: string;
  readonly at: Date;
}

/** Where the manager reports loads, swaps and failures. */
export interface ModelManagerLog {
  info(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** What the manager needs of its service. */
export interface ModelManagerOptions<T extends ServedModel> {
  /** Loads, verifies and warms up a version (the current one when undefined). */
  readonly load: (version: number | undefined) => Promise<T>;
  /** Where loads and swaps are reported. */
  readonly log: ModelManagerLog;
  /** Names the kind of model in log lines, e.g. "embedder". */
  readonly label: string;
}

/** Serves one registry model name. */
export class ModelManager<T extends ServedModel> {
  readonly #registry: ModelRegistry;
  readonly #name: string;
  readonly #options: ModelManagerOptions<T>;
  #serving: T | undefined;
  readonly #retiring = new Set<T>();
  #loading: number | undefined;
  #failed: FailedLoad | undefined;
  #stopWatching: (() => void) | undefined;
  #reaper: NodeJS.Timeout | undefined;

  constructor(registry: ModelRegistry, name: string, options: ModelManagerOptions<T>) {
    this.#registry = registry;
    this.#name = name;
    this.#options = options;
  }

  /** The model name served. */
  get name(): string {
    return this.#name;
  }

  /** The serving model, or undefined before the first load. */
  get serving(): T | undefined {
    return this.#serving;
  }

  /** Versions still finishing work after a swap. */
  get retiring(): readonly T[] {
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
   * Loads the current version and starts following promotions; or, with `pinnedVersion`, loads
   * that version and stays on it. With `required` (the default) it resolves once a model serves
   * and throws when none loads; without, it may resolve with none serving, and the first version
   * promoted later is loaded then.
   */
  async start(watchIntervalMs: number, pinnedVersion?: number, { required = true }: { required?: boolean } = {}): Promise<void> {
    const hasCurrent = pinnedVersion !== undefined || (await this.#registry.currentVersion(this.#name).catch(() => undefined)) !== undefined;
    if (required || hasCurrent) await this.#swapTo(pinnedVersion);
    if (required && !this.#serving) throw new Error(`${this.#name}: ${this.#failed?.error ?? 'no model loaded'}`);
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
    const { load, log, label } = this.#options;
    this.#loading = version ?? -1;
    try {
      const next = await load(version);
      const previous = this.#serving;
      this.#serving = next; // the swap: new calls choose `next` from here on
      this.#failed = undefined;
      if (previous) this.#retiring.add(previous);
      log.info({ model: this.#name, version: next.ref.version, previous: previous?.ref.version }, `${label} model serving`);
    } catch (error) {
      this.#failed = { version: version ?? 0, error: (error as Error).message, at: new Date() };
      log.error({ model: this.#name, version, err: error }, `${label} model failed to load; the serving model stays`);
    } finally {
      this.#loading = undefined;
    }
  }

  async #releaseIdle(): Promise<void> {
    for (const model of this.#retiring) {
      if (model.pending > 0) continue;
      this.#retiring.delete(model);
      await model.release();
      this.#options.log.info({ model: this.#name, version: model.ref.version }, `retired ${this.#options.label} model released`);
    }
  }

  /** Stops following promotions and releases every loaded version. */
  async stop(): Promise<void> {
    this.#stopWatching?.();
    clearInterval(this.#reaper);
    await Promise.all([...this.#retiring, ...(this.#serving ? [this.#serving] : [])].map((m) => m.release()));
    this.#retiring.clear();
    this.#serving = undefined;
  }
}
