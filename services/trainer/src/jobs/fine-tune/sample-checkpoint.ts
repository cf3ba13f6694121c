/**
 * What a fine-tune has embedded so far, kept as it goes, so that a cancelled or failed job can be
 * resumed (parameter `resume_from`) without embedding its images again: embedding is most of a
 * fine-tune's time. One JSON line per training image (its identity, the sha256 of its bytes, and
 * the embeddings of the crop and its augmented copies, or none when no face was found).
 *
 * Only embeddings of the job's own labelled images are written; gallery templates never are. A
 * job's checkpoint is deleted when it (or the job that resumed it) succeeds.
 */
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** One embedded training image. */
export interface EmbeddedImage {
  readonly path: string;
  readonly identity: string;
  readonly sha256: string;
  /** The crop's embedding and its augmented copies'; empty when no face was found. */
  readonly vectors: readonly Float32Array[];
}

const toBase64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
const fromBase64 = (text: string) => {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

/** The checkpoint file of a job. */
export const checkpointFile = (dir: string, jobId: string) => join(dir, `${jobId}.jsonl`);

/** A job's embedded images by path; empty when it kept none. A line cut short by a crash is skipped. */
export async function readCheckpoint(dir: string, jobId: string): Promise<Map<string, EmbeddedImage>> {
  const images = new Map<string, EmbeddedImage>();
  const lines = createInterface({ input: createReadStream(checkpointFile(dir, jobId)).on('error', () => undefined) });
  try {
    for await (const line of lines) {
      try {
        const row = JSON.parse(line) as { path: string; identity: string; sha256: string; vectors: string[] };
        images.set(row.path, { path: row.path, identity: row.identity, sha256: row.sha256, vectors: row.vectors.map(fromBase64) });
      } catch {
        /* a torn last line */
      }
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return images;
}

/** Appends a job's embedded images, one line each, in order. */
export class CheckpointWriter {
  readonly #file: string;
  readonly #dir: string;
  #writes: Promise<void> = Promise.resolve();

  constructor(dir: string, jobId: string) {
    this.#dir = dir;
    this.#file = checkpointFile(dir, jobId);
  }

  /** Queues one image's line. */
  add(image: EmbeddedImage): void {
    const line = `${JSON.stringify({ path: image.path, identity: image.identity, sha256: image.sha256, vectors: image.vectors.map(toBase64) })}\n`;
    this.#writes = this.#writes.then(async () => {
      await mkdir(this.#dir, { recursive: true });
      await appendFile(this.#file, line);
    });
  }

  /** Waits until every queued line is written. */
  flushed(): Promise<void> {
    return this.#writes;
  }
}

/** Deletes the checkpoints of `jobIds`. */
export async function removeCheckpoints(dir: string, jobIds: readonly string[]): Promise<void> {
  await Promise.all(jobIds.map((id) => rm(checkpointFile(dir, id), { force: true })));
}
