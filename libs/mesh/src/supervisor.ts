/**
 * Keeps a service process of the local mesh running. When it exits without being asked to, the
 * exit is logged and the service is started again on the same port (its callers' channels
 * reconnect by themselves), after a backoff: 1 s, doubling to at most 30 s. A restart that does
 * not reach SERVING, or a crash within a minute of the last restart, counts as a failure; after
 * `maxFailures` in a row the supervisor gives up, loudly, and says so through `gaveUp`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceName } from '@faceprint/contracts';
import type { ProcessExit, ServiceProcess } from './service-process.js';

/** How a supervisor restarts its service and reports what happens. */
export interface SupervisorOptions {
  /** Starts the service again on `port`; resolves once it serves. */
  readonly restart: (port: number) => Promise<ServiceProcess>;
  /** Receives one JSON log line per event (exit, restart, giving up). */
  readonly report: (line: string) => void;
  /** Failed restarts in a row before giving up. Default 5. */
  readonly maxFailures?: number;
  /** The first backoff, in ms (doubling, at most 30 s). Default 1000. */
  readonly firstBackoffMs?: number;
}

const STABLE_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

/** One supervised service. */
export class Supervisor {
  readonly name: ServiceName;
  /** Resolves with why, once the supervisor has given up (the service then stays down). */
  readonly gaveUp: Promise<Error>;
  #current: ServiceProcess;
  #stopping = false;
  readonly #options: SupervisorOptions;
  #giveUp: (error: Error) => void = () => undefined;
  #restarting: Promise<unknown> | undefined;

  constructor(first: ServiceProcess, options: SupervisorOptions) {
    this.name = first.name;
    this.#current = first;
    this.#options = options;
    this.gaveUp = new Promise((resolve) => (this.#giveUp = resolve));
    void this.#watch(first);
  }

  /** The process running now. */
  get current(): ServiceProcess {
    return this.#current;
  }

  /** Stops supervising and stops the process. */
  async stop(): Promise<ProcessExit> {
    this.#stopping = true;
    await this.#restarting?.catch(() => undefined); // a process still starting is stopped too
    return this.#current.stop();
  }

  async #watch(process: ServiceProcess): Promise<void> {
    const maxFailures = this.#options.maxFailures ?? 5;
    let failures = 0; // in a row: restarts that did not start, or crashed within a minute
    let exit = await process.exited;
    while (!this.#stopping) {
      failures += 1;
      if (failures > maxFailures) {
        const error = new Error(`${this.name} failed ${maxFailures} restarts in a row; giving up (last exit: ${describe(exit)})`);
        this.#log('fatal', error.message, { exit });
        this.#giveUp(error);
        return;
      }
      const backoffMs = Math.min(MAX_BACKOFF_MS, (this.#options.firstBackoffMs ?? 1_000) * 2 ** (failures - 1));
      this.#log('error', `${this.name} exited (${describe(exit)}); restarting in ${backoffMs} ms (attempt ${failures} of ${maxFailures})`, { exit });
      await sleep(backoffMs);
      if (this.#stopping) return;
      let next: ServiceProcess;
      try {
        const restarting = this.#options.restart(process.port);
        this.#restarting = restarting;
        next = await restarting;
      } catch (error) {
        this.#log('error', `${this.name} did not start again: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, {});
        exit = { code: null, signal: null };
        continue;
      }
      this.#current = next;
      this.#log('info', `${this.name} restarted and serving (pid ${next.pid})`, {});
      if (this.#stopping) {
        await next.stop();
        return;
      }
      const startedAt = Date.now();
      exit = await next.exited;
      if (Date.now() - startedAt >= STABLE_MS) failures = 0; // it ran: a new crash starts a new count
    }
  }

  #log(level: 'info' | 'error' | 'fatal', msg: string, fields: Record<string, unknown>): void {
    this.#options.report(JSON.stringify({ level, time: Date.now(), service: 'mesh', supervised: this.name, msg, ...fields }));
  }
}

const describe = (exit: ProcessExit) => (exit.signal ? `signal ${exit.signal}` : exit.code === null ? 'no exit status' : `code ${exit.code}`);
