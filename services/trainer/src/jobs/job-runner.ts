/**
 * The trainer's jobs: created idempotently under a request id, run one at a time in this process,
 * persisted as one JSON file each (protobuf JSON of Job) so that they outlive a restart, watched
 * as a stream of updates, cancelled through an AbortSignal. A job that was running when the
 * process stopped is marked failed at the next start (its work can be started again).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create, fromJsonString, toJsonString } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { JobSchema, JobState, type Job, type JobProgress, type JobSpec } from '@faceprint/contracts/trainer';
import type { ModelRef } from '@faceprint/contracts/common';
import type { Logger } from '@faceprint/telemetry';

/** What a kind of job does: reports progress, honours the signal, returns the model it produced (if any). */
export type JobWork = (spec: JobSpec, context: { jobId: string; signal: AbortSignal; progress: (update: Partial<Omit<JobProgress, '$typeName'>>) => void }) => Promise<ModelRef | undefined>;

const TERMINAL = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]);
export const isTerminal = (job: Job) => TERMINAL.has(job.state);

/** Runs and keeps the trainer's jobs. */
export class JobRunner {
  readonly #dir: string;
  readonly #work: (spec: JobSpec) => JobWork;
  readonly #log: Logger;
  readonly #jobs = new Map<string, Job>();
  readonly #byRequest = new Map<string, string>();
  readonly #aborts = new Map<string, AbortController>();
  readonly #events = new EventEmitter();
  #queue: Promise<void> = Promise.resolve();

  /** `work` picks what a spec's kind does (it throws for kinds the trainer cannot run). */
  constructor(dir: string, work: (spec: JobSpec) => JobWork, log: Logger) {
    this.#dir = dir;
    this.#work = work;
    this.#log = log;
    this.#events.setMaxListeners(0);
  }

  /** Loads the jobs kept on disk; those left running by a previous process are marked failed. */
  async open(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    for (const file of (await readdir(this.#dir)).filter((f) => f.endsWith('.json'))) {
      const job = fromJsonString(JobSchema, await readFile(join(this.#dir, file), 'utf8'), { ignoreUnknownFields: true });
      if (!isTerminal(job)) {
        job.state = JobState.FAILED;
        job.error = 'interrupted: the trainer stopped while the job ran; start it again';
        job.endTime = timestampFromDate(new Date());
        await this.#save(job);
      }
      this.#jobs.set(job.jobId, job);
      const requestId = job.spec?.parameters['request_id'];
      if (requestId) this.#byRequest.set(requestId, job.jobId);
    }
  }

  /** Starts a job, or returns the one started earlier under the same request id. */
  async start(requestId: string, spec: JobSpec): Promise<Job> {
    const earlier = this.#byRequest.get(requestId);
    if (earlier) return this.#jobs.get(earlier)!;
    const work = this.#work(spec); // throws for a kind that cannot run, before anything is kept
    const job = create(JobSchema, {
      jobId: randomUUID(),
      spec: { ...spec, parameters: { ...spec.parameters, request_id: requestId } },
      state: JobState.QUEUED,
      progress: { message: 'queued' },
      createTime: timestampFromDate(new Date()),
    });
    this.#jobs.set(job.jobId, job);
    this.#byRequest.set(requestId, job.jobId);
    await this.#save(job);
    const abort = new AbortController();
    this.#aborts.set(job.jobId, abort);
    // One job at a time: they share the machine (and the services they start).
    this.#queue = this.#queue.then(() => this.#run(job, work, abort.signal));
    return job;
  }

  get(jobId: string): Job | undefined {
    return this.#jobs.get(jobId);
  }

  /** Every job, newest first. */
  list(): Job[] {
    return [...this.#jobs.values()].sort((a, b) => Number((b.createTime?.seconds ?? 0n) - (a.createTime?.seconds ?? 0n)) || (b.createTime?.nanos ?? 0) - (a.createTime?.nanos ?? 0));
  }

  /** Cancels a queued or running job; a finished one is returned unchanged. */
  async cancel(jobId: string): Promise<Job | undefined> {
    const job = this.#jobs.get(jobId);
    if (!job || isTerminal(job)) return job;
    this.#aborts.get(jobId)?.abort();
    if (job.state === JobState.QUEUED) await this.#finish(job, JobState.CANCELLED, 'cancelled before it started');
    else await new Promise<void>((resolve) => this.#events.once(`done:${jobId}`, resolve));
    return job;
  }

  /** The job now, then each update until it finishes. */
  async *watch(jobId: string, signal: AbortSignal): AsyncGenerator<Job> {
    const job = this.#jobs.get(jobId);
    if (!job) return;
    const updates: Job[] = [];
    let wake: (() => void) | undefined;
    const onUpdate = (updated: Job) => {
      updates.push(create(JobSchema, updated));
      wake?.();
    };
    this.#events.on(`update:${jobId}`, onUpdate);
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      yield create(JobSchema, job);
      if (isTerminal(job)) return;
      while (!signal.aborted) {
        if (updates.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        for (let next = updates.shift(); next; next = updates.shift()) {
          yield next;
          if (isTerminal(next)) return;
        }
      }
    } finally {
      this.#events.off(`update:${jobId}`, onUpdate);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Waits for every queued job (tests, shutdown). */
  async idle(): Promise<void> {
    await this.#queue;
  }

  /** Cancels every unfinished job and waits for them. */
  async close(): Promise<void> {
    for (const abort of this.#aborts.values()) abort.abort();
    await this.#queue;
  }

  async #run(job: Job, work: JobWork, signal: AbortSignal): Promise<void> {
    if (isTerminal(job)) return;
    job.state = JobState.RUNNING;
    job.startTime = timestampFromDate(new Date());
    job.progress = { ...job.progress!, message: 'running' };
    await this.#changed(job);
    let lastSave = 0;
    try {
      const result = await work(job.spec!, {
        jobId: job.jobId,
        signal,
        progress: (update) => {
          job.progress = { ...job.progress!, ...update };
          this.#events.emit(`update:${job.jobId}`, job);
          // Kept on disk now and then, and always at the end.
          if (Date.now() - lastSave > 1_000) {
            lastSave = Date.now();
            void this.#save(job).catch((error: unknown) => this.#log.warn({ err: error, jobId: job.jobId }, 'could not save job progress'));
          }
        },
      });
      if (signal.aborted) await this.#finish(job, JobState.CANCELLED, 'cancelled');
      else {
        job.resultModel = result;
        await this.#finish(job, JobState.SUCCEEDED, 'done');
      }
    } catch (error) {
      if (signal.aborted) await this.#finish(job, JobState.CANCELLED, 'cancelled');
      else {
        job.error = (error as Error).message;
        this.#log.warn({ jobId: job.jobId, kind: job.spec?.kind, err: error }, 'job failed');
        await this.#finish(job, JobState.FAILED, 'failed');
      }
    } finally {
      this.#aborts.delete(job.jobId);
    }
  }

  async #finish(job: Job, state: JobState, message: string): Promise<void> {
    job.state = state;
    job.endTime = timestampFromDate(new Date());
    job.progress = { ...job.progress!, message };
    await this.#changed(job);
    this.#events.emit(`done:${job.jobId}`);
  }

  async #changed(job: Job): Promise<void> {
    await this.#save(job);
    this.#events.emit(`update:${job.jobId}`, job);
  }

  /** Writes the job's file (aside, then renamed over the old one). */
  async #save(job: Job): Promise<void> {
    const path = join(this.#dir, `${job.jobId}.json`);
    const aside = `${path}.${randomUUID()}.tmp`;
    await writeFile(aside, toJsonString(JobSchema, job));
    await rename(aside, path);
  }
}
