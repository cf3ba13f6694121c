/**
 * A background task the matcher repeats: run, wait `intervalMs` after it ends, run again, until
 * stopped (stop waits for a run in progress). Runs never overlap, and the timer does not keep the
 * process alive. A failed run is logged and the next one comes at the usual interval.
 */
import type { Logger } from '@faceprint/telemetry';
import { withoutRowData } from './database/database-errors.js';

export class PeriodicTask {
  readonly #intervalMs: number;
  readonly #run: () => Promise<void>;
  readonly #log: Logger;
  readonly #failure: string;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  /** `run` every `intervalMs` (0: never); `failure` is the warning logged when a run fails. */
  constructor(intervalMs: number, run: () => Promise<void>, log: Logger, failure: string) {
    this.#intervalMs = intervalMs;
    this.#run = run;
    this.#log = log;
    this.#failure = failure;
  }

  /** Whether stop() was called: a long run checks it between steps. */
  get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped || this.#intervalMs === 0) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#run()
        .catch((error: unknown) => this.#log.warn({ err: withoutRowData(error) }, this.#failure))
        .finally(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
