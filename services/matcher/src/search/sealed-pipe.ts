/**
 * Sealed files written and read through a named pipe. usearch saves and loads an index only to and
 * from a path, synchronously; an index holds plaintext template vectors, which must never rest on
 * a disk. So the path given to it is a pipe, and a worker thread on its other end seals what comes
 * out (AES-256-GCM, streamed into the file) or, having checked the whole sealed file first, feeds
 * the plaintext in. Nothing but ciphertext reaches the disk, and no second copy is held in memory.
 *
 * Node has no mkfifo; the pipe is made with coreutils' `mkfifo` (in every image this runs in).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';

/** What the worker is asked to do (sealed-pipe-worker.mjs). */
export interface PipeJob {
  readonly mode: 'seal' | 'open';
  readonly pipe: string;
  readonly file: string;
  readonly key: Buffer;
  readonly context: string;
}

type WorkerMessage = { kind: 'ready' | 'verified' | 'done' } | { kind: 'failed'; message: string };

/**
 * Seals what `write(path)` writes to a path into `file` (a new file), under `key` and bound to
 * `context`. `write` runs synchronously on this thread, as usearch's save does.
 */
export async function writeSealed(file: string, key: Buffer, context: string, scratchDir: string, write: (path: string) => void): Promise<void> {
  await throughPipe({ mode: 'seal', file, key, context }, scratchDir, 'ready', write);
}

/**
 * Checks the sealed `file` whole, then lets `read(path)` read its plaintext from a path. Throws,
 * before `read` is called, when the file was changed, cut short or sealed for another context.
 */
export async function readSealed(file: string, key: Buffer, context: string, scratchDir: string, read: (path: string) => void): Promise<void> {
  await throughPipe({ mode: 'open', file, key, context }, scratchDir, 'verified', read);
}

/** Runs the worker on a fresh pipe; once it says `startWhen`, runs `use(pipe)` on this thread. */
async function throughPipe(job: Omit<PipeJob, 'pipe'>, scratchDir: string, startWhen: 'ready' | 'verified', use: (path: string) => void): Promise<void> {
  const pipe = join(scratchDir, `.pipe-${randomUUID()}`);
  await promisify(execFile)('mkfifo', ['-m', '600', pipe]);
  // No loaders or preloads of the service's own (tsx, telemetry): the worker needs Node's modules only.
  const worker = new Worker(new URL('./sealed-pipe-worker.mjs', import.meta.url), { workerData: { ...job, pipe } satisfies PipeJob, execArgv: [] });
  try {
    const messages: WorkerMessage[] = [];
    let wake: (() => void) | undefined;
    const next = async (): Promise<WorkerMessage> => {
      while (messages.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return messages.shift()!;
    };
    worker.on('message', (message: WorkerMessage) => {
      messages.push(message);
      wake?.();
    });
    worker.on('error', (error) => {
      messages.push({ kind: 'failed', message: error.message });
      wake?.();
    });
    for (;;) {
      const message = await next();
      if (message.kind === 'failed') throw new Error(message.message);
      if (message.kind === startWhen) break;
    }
    try {
      use(pipe);
    } catch (error) {
      // The worker may still wait to open its end: open ours once (read-write never blocks on a
      // pipe) and close it, so that its open returns and it ends.
      closeSync(openSync(pipe, 'r+'));
      await next();
      throw error;
    }
    const end = await next();
    if (end.kind === 'failed') throw new Error(end.message);
  } finally {
    await worker.terminate();
    await rm(pipe, { force: true });
  }
}
