/**
 * An ONNX Runtime session on its own thread. onnxruntime-node runs a session synchronously on the
 * calling thread (its `run` is a promise around a blocking call), so inference on a service's main
 * thread stops gRPC for the whole run: no request is read, no health check answered, no next
 * batch can form. Measured on the embedder under 64 concurrent callers, that held batches to a
 * few crops (docs/vision.md). Here the session lives in a worker thread; the main thread sends it
 * the input tensors (their buffers transferred, not copied, and handed back with the outputs) and
 * keeps serving while it runs.
 */
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';

/**
 * Node 20 does not carry `--import tsx` into worker threads, so the thread loads its TypeScript
 * entry through tsx's API (resolved here, where the service's dependencies are).
 */
const WORKER_BOOTSTRAP = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ tsImport }) => tsImport(${JSON.stringify(new URL('./inference-worker.ts', import.meta.url).href)}, ${JSON.stringify(import.meta.url)}))`;

/** A float32 tensor as it crosses threads. */
export interface TensorData {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/** Messages to the inference thread. */
export type ToWorker =
  | { kind: 'load'; model: Uint8Array; options: ort.InferenceSession.SessionOptions }
  | { kind: 'run'; id: number; feeds: Record<string, TensorData>; outputs: string[] | undefined }
  | { kind: 'release' };

/** Messages from it. */
export type FromWorker =
  | { kind: 'loaded'; inputNames: string[]; outputNames: string[] }
  | { kind: 'ran'; id: number; outputs: Record<string, TensorData>; inputs: Record<string, TensorData> }
  | { kind: 'released' }
  | { kind: 'failed'; id: number | undefined; message: string };

/** What a run gives back: the outputs, and the input tensors handed back for reuse. */
export interface RunResult {
  readonly outputs: Readonly<Record<string, TensorData>>;
  readonly inputs: Readonly<Record<string, TensorData>>;
}

/** A session in a worker thread: load, run one message each, release. */
export class WorkerSession {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (result: RunResult) => void; reject: (error: Error) => void }>();
  #control: { resolve: (message: FromWorker) => void; reject: (error: Error) => void } | undefined;
  #nextId = 0;
  #dead: Error | undefined;
  #names: { inputs: readonly string[]; outputs: readonly string[] } = { inputs: [], outputs: [] };

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
      const loaded = await session.#controlMessage({ kind: 'load', model, options });
      if (loaded.kind === 'loaded') session.#names = { inputs: loaded.inputNames, outputs: loaded.outputNames };
    } catch (error) {
      await session.#worker.terminate();
      throw error;
    }
    return session;
  }

  /** The graph's input names, as ONNX Runtime reports them. */
  get inputNames(): readonly string[] {
    return this.#names.inputs;
  }

  /** The graph's output names. */
  get outputNames(): readonly string[] {
    return this.#names.outputs;
  }

  /**
   * Runs the session on `feeds` (float32 tensors by input name) and returns `outputs` (all when
   * omitted). Each feed's buffer travels to the thread and back instead of being copied (unusable
   * here meanwhile), so the caller can reuse it; a view that does not start its buffer is copied first.
   */
  run(feeds: Readonly<Record<string, TensorData>>, outputs?: readonly string[]): Promise<RunResult> {
    if (this.#dead) return Promise.reject(this.#dead);
    const owned: Record<string, TensorData> = {};
    for (const [name, { data, dims }] of Object.entries(feeds)) owned[name] = { data: data.byteOffset === 0 ? data : data.slice(), dims: [...dims] };
    const id = this.#nextId++;
    return new Promise<RunResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const message: ToWorker = { kind: 'run', id, feeds: owned, outputs: outputs && [...outputs] };
      this.#worker.postMessage(message, [...new Set(Object.values(owned).map(({ data }) => data.buffer as ArrayBuffer))]);
    });
  }

  /** Releases the session and ends the thread. */
  async release(): Promise<void> {
    if (!this.#dead) await this.#controlMessage({ kind: 'release' }).catch(() => undefined);
    await this.#worker.terminate();
  }

  #controlMessage(message: ToWorker): Promise<FromWorker> {
    return new Promise<FromWorker>((resolve, reject) => {
      this.#control = { resolve, reject };
      this.#worker.postMessage(message);
    });
  }

  #receive(message: FromWorker): void {
    if (message.kind === 'ran') {
      this.#pending.get(message.id)?.resolve({ outputs: message.outputs, inputs: message.inputs });
      this.#pending.delete(message.id);
    } else if (message.kind === 'failed' && message.id !== undefined) {
      this.#pending.get(message.id)?.reject(new Error(message.message));
      this.#pending.delete(message.id);
    } else if (message.kind === 'failed') {
      this.#control?.reject(new Error(message.message));
      this.#control = undefined;
    } else {
      this.#control?.resolve(message);
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
