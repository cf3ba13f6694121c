/**
 * An ONNX Runtime session on its own thread. onnxruntime-node runs a session synchronously on the
 * calling thread (its `run` is a promise around a blocking call), so inference on the service's
 * main thread stops gRPC for the whole batch: no request is read, no next batch can form. Measured
 * on the embedder under 64 concurrent callers, that held batches to a few crops (docs/vision.md).
 * Here the session lives in a worker thread; the main thread sends it a batch (the tensor's
 * buffer is transferred, not copied) and keeps serving while it runs.
 */
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';

/**
 * Node 20 does not carry `--import tsx` into worker threads, so the thread loads its TypeScript
 * entry through tsx's API (resolved here, where the service's dependencies are).
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ tsImport }) => tsImport(${JSON.stringify(new URL('./inference-worker.ts', import.meta.url).href)}, ${JSON.stringify(import.meta.url)}))`;

/** Messages to the inference thread. */
export type ToWorker =
  | { kind: 'load'; model: Uint8Array; options: ort.InferenceSession.SessionOptions }
  | { kind: 'run'; id: number; input: string; output: string; tensor: Float32Array; dims: number[] }
  | { kind: 'release' };

/** Messages from it. */
export type FromWorker =
  | { kind: 'loaded' }
  | { kind: 'ran'; id: number; data: Float32Array; dims: number[]; input: Float32Array }
  | { kind: 'released' }
  | { kind: 'failed'; id: number | undefined; message: string };

/** What a batch gives back: the output, and the input tensor handed back for reuse. */
export interface RunResult {
  readonly output: Float32Array;
  readonly input: Float32Array;
}

/** A session in a worker thread: load, run batches one message each, release. */
export class WorkerSession {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (result: RunResult) => void; reject: (error: Error) => void }>();
  #control: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #nextId = 0;
  #dead: Error | undefined;

  private constructor() {
    this.#worker = new Worker(WORKER_BOOTSTRAP, { eval: true });
    this.#worker.on('message', (message: FromWorker) => this.#receive(message));
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => this.#fail(new Error(`the inference thread exited (code ${code})`)));
  }

  /** Starts a thread and loads `model` in it with `options`. */
  static async create(model: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<WorkerSession> {
    const session = new WorkerSession();
    try {
      await session.#controlMessage({ kind: 'load', model, options });
    } catch (error) {
      await session.#worker.terminate();
      throw error;
    }
    return session;
  }

  /**
   * Runs one batch: `tensor` as `input`, returning `output`'s data and the input tensor back. Its
   * buffer travels to the thread and back instead of being copied (unusable here meanwhile), so the
   * caller can reuse it for a later batch; a view that does not start the buffer is copied first.
   */
  run(input: string, output: string, tensor: Float32Array, dims: readonly number[]): Promise<RunResult> {
    if (this.#dead) return Promise.reject(this.#dead);
    const owned = tensor.byteOffset === 0 ? tensor : tensor.slice();
    const id = this.#nextId++;
    return new Promise<RunResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const message: ToWorker = { kind: 'run', id, input, output, tensor: owned, dims: [...dims] };
      this.#worker.postMessage(message, [owned.buffer as ArrayBuffer]);
    });
  }

  /** Releases the session and ends the thread. */
  async release(): Promise<void> {
    if (!this.#dead) await this.#controlMessage({ kind: 'release' }).catch(() => undefined);
    await this.#worker.terminate();
  }

  #controlMessage(message: ToWorker): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#control = { resolve, reject };
      this.#worker.postMessage(message);
    });
  }

  #receive(message: FromWorker): void {
    if (message.kind === 'ran') {
      this.#pending.get(message.id)?.resolve({ output: message.data, input: message.input });
      this.#pending.delete(message.id);
    } else if (message.kind === 'failed' && message.id !== undefined) {
      this.#pending.get(message.id)?.reject(new Error(message.message));
      this.#pending.delete(message.id);
    } else if (message.kind === 'failed') {
      this.#control?.reject(new Error(message.message));
      this.#control = undefined;
    } else {
      this.#control?.resolve();
      this.#control = undefined;
    }
  }

  /** The thread is gone: every call waiting on it fails, and so does every later one. */
  #fail(error: Error): void {
    this.#dead ??= error;
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
    this.#control?.reject(error);
    this.#control = undefined;
  }
}
