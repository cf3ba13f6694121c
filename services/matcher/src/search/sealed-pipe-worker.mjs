// The thread behind sealed-pipe.ts: moves bytes between a named pipe and a sealed file
// (AES-256-GCM, streamed), so that a synchronous writer or reader on the main thread (usearch's
// save and load take only a path) never sees a plaintext file on disk. Plain JavaScript with
// Node's own modules only, so that the thread starts without the TypeScript loader (a snapshot
// opens one per partition).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const CHUNK = 1 << 20;

/** Reads the pipe to its end, sealing it into the new file (nonce, ciphertext, tag), fsynced. */
function seal(job) {
  const pipe = openSync(job.pipe, 'r');
  let file;
  try {
    file = openSync(job.file, 'wx', 0o600);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', job.key, nonce);
    cipher.setAAD(Buffer.from(job.context, 'utf8'));
    writeSync(file, nonce);
    const buffer = Buffer.alloc(CHUNK);
    for (let read; (read = readSync(pipe, buffer)) > 0; ) writeSync(file, cipher.update(buffer.subarray(0, read)));
    writeSync(file, cipher.final());
    writeSync(file, cipher.getAuthTag());
    fsyncSync(file);
  } finally {
    closeSync(pipe);
    if (file !== undefined) closeSync(file);
  }
}

/** Checks the sealed file whole (its tag) before any plaintext is written to the pipe, then writes it. */
function open(job) {
  const file = openSync(job.file, 'r');
  let pipe;
  try {
    const size = fstatSync(file).size;
    if (size < NONCE_BYTES + TAG_BYTES) throw new Error('a sealed snapshot file is shorter than its nonce and tag');
    const nonce = Buffer.alloc(NONCE_BYTES);
    const tag = Buffer.alloc(TAG_BYTES);
    readSync(file, nonce, 0, NONCE_BYTES, 0);
    readSync(file, tag, 0, TAG_BYTES, size - TAG_BYTES);
    const pass = (write) => {
      const decipher = createDecipheriv('aes-256-gcm', job.key, nonce);
      decipher.setAAD(Buffer.from(job.context, 'utf8'));
      decipher.setAuthTag(tag);
      const buffer = Buffer.alloc(CHUNK);
      for (let position = NONCE_BYTES; position < size - TAG_BYTES; ) {
        const read = readSync(file, buffer, 0, Math.min(CHUNK, size - TAG_BYTES - position), position);
        write(decipher.update(buffer.subarray(0, read)));
        position += read;
      }
      decipher.final(); // throws when the file was changed, cut short, or sealed for another context
    };
    pass(() => undefined);
    parentPort.postMessage({ kind: 'verified' });
    pipe = openSync(job.pipe, 'w');
    pass((plaintext) => writeSync(pipe, plaintext));
  } finally {
    closeSync(file);
    if (pipe !== undefined) closeSync(pipe);
  }
}

const job = workerData;
try {
  if (job.mode === 'seal') {
    parentPort.postMessage({ kind: 'ready' });
    seal(job);
  } else {
    open(job);
  }
  parentPort.postMessage({ kind: 'done' });
} catch (error) {
  // The main thread may be blocked opening its end of the pipe: open the other end once and close
  // it, so that its open returns and its read or write ends instead of waiting forever.
  try {
    closeSync(openSync(job.pipe, 'r+'));
  } catch {
    // the pipe is gone: nothing waits on it
  }
  parentPort.postMessage({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
}
