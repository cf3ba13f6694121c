/**
 * The in-process vector index: one partition per tenant and model version, so a search can only
 * ever see the probe's tenant and the probe's model. A partition searches exactly (usearch's
 * brute-force kernel over a flat array) while it is small, and moves to an HNSW graph (usearch)
 * once it reaches the exact-search limit. Keys are the templates' database keys; scores are cosine
 * similarities. The index holds vectors only: what a key means is always confirmed in Postgres.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import usearch from 'usearch';

const { Index, MetricKind, exactSearch } = usearch;

/**
 * HNSW parameters: M = 16 links per node and a wide search beam. On 1M synthetic 128-D templates
 * (bench:matcher's data) recall@1 of plain usearch was 0.82 at a beam of 128, 0.93 at 256 and 1.00
 * at 512 (about 5 ms a query on 2 cores); at 100k, 128 was already enough. usearch's JS binding
 * fixes the beam when an index is made, so one beam serves every partition size.
 */
export const HNSW_PARAMETERS = { connectivity: 16, expansionAdd: 128, expansionSearch: 512 } as const;

/** Search results: keys with their cosine similarity, best first. */
export interface SearchHits {
  readonly keys: readonly bigint[];
  readonly scores: readonly number[];
}

/** One searchable set of vectors of one dimension. */
export interface Partition {
  readonly dim: number;
  /** How many vectors it holds. */
  readonly size: number;
  /** `exact` or `hnsw`. */
  readonly mode: 'exact' | 'hnsw';
  /** Adds vectors (a key already present is left as it is). */
  add(keys: readonly bigint[], vectors: Float32Array): void;
  /** Removes keys; absent keys are ignored. */
  remove(keys: readonly bigint[]): void;
  /** The `k` nearest keys to `query`. */
  search(query: Float32Array, k: number): SearchHits;
  /** Writes the partition to `path` (a pipe: index-snapshots.ts seals what comes out), synchronously. */
  writeTo(path: string): void;
}

/** A flat array searched by brute force: exact, and cheap to change. */
export class ExactPartition implements Partition {
  readonly mode = 'exact';
  readonly dim: number;
  #vectors: Float32Array;
  #keys: bigint[] = [];
  readonly #slots = new Map<bigint, number>();

  constructor(dim: number, capacity = 64) {
    this.dim = dim;
    this.#vectors = new Float32Array(dim * capacity);
  }

  get size(): number {
    return this.#keys.length;
  }

  /** Reads what {@link writeTo} wrote: the key count (u64), the keys (u64 each), the vectors (f32). */
  static readFrom(path: string, dim: number): ExactPartition {
    const bytes = readFileSync(path);
    const count = bytes.length >= 8 ? Number(bytes.readBigUInt64LE(0)) : -1;
    if (count < 0 || bytes.length !== 8 + count * 8 + count * dim * 4) throw new Error(`an exact partition of ${dim}-D vectors does not fit its ${bytes.length} bytes`);
    const partition = new ExactPartition(dim, Math.max(64, count));
    const keys = new BigUint64Array(bytes.buffer.slice(bytes.byteOffset + 8, bytes.byteOffset + 8 + count * 8));
    const vectors = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8 + count * 8, bytes.byteOffset + bytes.length));
    partition.add([...keys], vectors);
    return partition;
  }

  writeTo(path: string): void {
    const header = Buffer.alloc(8);
    header.writeBigUInt64LE(BigInt(this.size));
    const keys = BigUint64Array.from(this.#keys);
    const vectors = this.#vectors.subarray(0, this.size * this.dim);
    writeFileSync(path, Buffer.concat([header, Buffer.from(keys.buffer), Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength)]));
  }

  /** The vectors and keys, packed (for moving to HNSW). */
  entries(): { keys: bigint[]; vectors: Float32Array } {
    return { keys: [...this.#keys], vectors: this.#vectors.subarray(0, this.size * this.dim) };
  }

  add(keys: readonly bigint[], vectors: Float32Array): void {
    keys.forEach((key, i) => {
      if (this.#slots.has(key)) return;
      if ((this.size + 1) * this.dim > this.#vectors.length) {
        const grown = new Float32Array(this.#vectors.length * 2);
        grown.set(this.#vectors);
        this.#vectors = grown;
      }
      this.#vectors.set(vectors.subarray(i * this.dim, (i + 1) * this.dim), this.size * this.dim);
      this.#slots.set(key, this.size);
      this.#keys.push(key);
    });
  }

  remove(keys: readonly bigint[]): void {
    for (const key of keys) {
      const slot = this.#slots.get(key);
      if (slot === undefined) continue;
      // Move the last vector into the freed slot.
      const last = this.size - 1;
      const lastKey = this.#keys[last]!;
      this.#vectors.copyWithin(slot * this.dim, last * this.dim, (last + 1) * this.dim);
      this.#keys[slot] = lastKey;
      this.#slots.set(lastKey, slot);
      this.#keys.pop();
      this.#slots.delete(key);
    }
  }

  search(query: Float32Array, k: number): SearchHits {
    const count = Math.min(k, this.size);
    if (count === 0) return { keys: [], scores: [] };
    const found = exactSearch(this.#vectors.subarray(0, this.size * this.dim), query, this.dim, count, MetricKind.Cos, 0);
    const keys: bigint[] = [];
    const scores: number[] = [];
    for (let i = 0; i < found.keys.length; i++) {
      keys.push(this.#keys[Number(found.keys[i])]!);
      scores.push(1 - found.distances[i]!);
    }
    return { keys, scores };
  }
}

/** An HNSW graph: approximate, logarithmic search. */
export class HnswPartition implements Partition {
  readonly mode = 'hnsw';
  readonly dim: number;
  readonly #index: InstanceType<typeof Index>;

  constructor(dim: number) {
    this.dim = dim;
    this.#index = new Index({
      dimensions: dim,
      metric: MetricKind.Cos,
      quantization: usearch.ScalarKind.F32,
      connectivity: HNSW_PARAMETERS.connectivity,
      expansion_add: HNSW_PARAMETERS.expansionAdd,
      expansion_search: HNSW_PARAMETERS.expansionSearch,
      multi: false,
    });
  }

  get size(): number {
    return this.#index.size();
  }

  /** Reads a graph usearch saved with {@link writeTo}. */
  static readFrom(path: string, dim: number): HnswPartition {
    const partition = new HnswPartition(dim);
    partition.#index.load(path);
    if (partition.#index.dimensions() !== dim) throw new Error(`an HNSW partition of ${partition.#index.dimensions()}-D vectors where ${dim}-D ones were expected`);
    return partition;
  }

  writeTo(path: string): void {
    this.#index.save(path);
  }

  add(keys: readonly bigint[], vectors: Float32Array): void {
    const present = keys.length > 0 ? this.#index.contains(BigUint64Array.from(keys)) : [];
    const isPresent = Array.isArray(present) ? present : [present];
    const fresh = keys.flatMap((_, i) => (isPresent[i] ? [] : [i]));
    if (fresh.length === 0) return;
    const freshVectors = new Float32Array(fresh.length * this.dim);
    fresh.forEach((i, n) => freshVectors.set(vectors.subarray(i * this.dim, (i + 1) * this.dim), n * this.dim));
    // One thread: usearch 2.25's Node binding runs a multi-threaded add without giving each worker
    // its own thread context, so concurrent inserts share scratch space and can leave vectors
    // unreachable in the graph (a 120-vector graph lost a vector in about a quarter of builds).
    this.#index.add(BigUint64Array.from(fresh.map((i) => keys[i]!)), freshVectors, 1);
  }

  remove(keys: readonly bigint[]): void {
    if (keys.length > 0) this.#index.remove(BigUint64Array.from(keys));
  }

  search(query: Float32Array, k: number): SearchHits {
    const count = Math.min(k, this.size);
    if (count === 0) return { keys: [], scores: [] };
    const found = this.#index.search(query, count, 1);
    const keys: bigint[] = [];
    const scores: number[] = [];
    for (let i = 0; i < found.keys.length; i++) {
      keys.push(found.keys[i]!);
      scores.push(1 - found.distances[i]!);
    }
    return { keys, scores };
  }
}

/** Vectors copied into a new HNSW graph per turn of the event loop while it is built. */
const BUILD_CHUNK = 2_000;

/**
 * A partition that starts exact and moves to HNSW once it holds `exactLimit` vectors. The graph
 * is built in the background, a chunk per event-loop turn, while the exact partition keeps
 * serving; changes made meanwhile are replayed onto the graph before it takes over.
 */
export class AdaptivePartition implements Partition {
  readonly dim: number;
  readonly #exactLimit: number;
  #inner: Partition;
  #building: { added: Map<bigint, Float32Array>; removed: Set<bigint> } | undefined;

  constructor(dim: number, exactLimit: number, inner: Partition = new ExactPartition(dim)) {
    this.dim = dim;
    this.#exactLimit = exactLimit;
    this.#inner = inner;
  }

  /** An empty partition expected to hold `expected` vectors: HNSW from the start when that reaches the limit. */
  static reserve(dim: number, exactLimit: number, expected: number): AdaptivePartition {
    return new AdaptivePartition(dim, exactLimit, expected >= exactLimit ? new HnswPartition(dim) : new ExactPartition(dim));
  }

  get size(): number {
    return this.#inner.size;
  }

  get mode(): 'exact' | 'hnsw' {
    return this.#inner.mode;
  }

  /** Resolves once no HNSW build is running (for tests and benchmarks). */
  async settled(): Promise<void> {
    while (this.#building) await new Promise((resolve) => setImmediate(resolve));
  }

  add(keys: readonly bigint[], vectors: Float32Array): void {
    this.#inner.add(keys, vectors);
    if (this.#building) {
      keys.forEach((key, i) => {
        this.#building!.removed.delete(key);
        this.#building!.added.set(key, vectors.slice(i * this.dim, (i + 1) * this.dim));
      });
    }
    if (this.#inner instanceof ExactPartition && !this.#building && this.#inner.size >= this.#exactLimit) {
      void this.#buildGraph(this.#inner);
    }
  }

  remove(keys: readonly bigint[]): void {
    this.#inner.remove(keys);
    for (const key of keys) {
      this.#building?.added.delete(key);
      this.#building?.removed.add(key);
    }
  }

  search(query: Float32Array, k: number): SearchHits {
    return this.#inner.search(query, k);
  }

  writeTo(path: string): void {
    this.#inner.writeTo(path);
  }

  async #buildGraph(exact: ExactPartition): Promise<void> {
    const building = { added: new Map<bigint, Float32Array>(), removed: new Set<bigint>() };
    this.#building = building;
    const { keys, vectors } = exact.entries();
    const graph = await buildGraph(this.dim, keys, vectors.slice());
    graph.remove([...building.removed]);
    for (const [key, vector] of building.added) graph.add([key], vector);
    this.#inner = graph;
    this.#building = undefined;
  }
}

/** An HNSW graph of `keys` and their packed `vectors`, built a chunk per event-loop turn. */
async function buildGraph(dim: number, keys: readonly bigint[], vectors: Float32Array): Promise<HnswPartition> {
  const graph = new HnswPartition(dim);
  for (let start = 0; start < keys.length; start += BUILD_CHUNK) {
    const end = Math.min(keys.length, start + BUILD_CHUNK);
    graph.add(keys.slice(start, end), vectors.subarray(start * dim, end * dim));
    await new Promise((resolve) => setImmediate(resolve));
  }
  return graph;
}

/** Names the partition of a tenant's templates of one model version. */
export interface PartitionKey {
  readonly tenantId: string;
  readonly modelName: string;
  readonly modelVersion: number;
}

/** A partition's map key. */
export const partitionName = (key: PartitionKey) => JSON.stringify([key.tenantId, key.modelName, key.modelVersion]);

/** Every partition of this matcher. */
export class VectorIndex {
  readonly #exactLimit: number;
  readonly #partitions = new Map<string, Partition>();

  constructor(exactLimit: number) {
    this.#exactLimit = exactLimit;
  }

  /** The partition of `key`, if it holds anything. */
  partition(key: PartitionKey): Partition | undefined {
    const partition = this.#partitions.get(partitionName(key));
    return partition && partition.size > 0 ? partition : undefined;
  }

  /**
   * Prepares the partition of `key` for `expected` vectors (a start-up snapshot's count), so that
   * a large one is built as an HNSW graph as it loads, never held as a flat copy first.
   */
  reserve(key: PartitionKey, dim: number, expected: number): void {
    this.#partitions.set(partitionName(key), AdaptivePartition.reserve(dim, this.#exactLimit, expected));
  }

  /** Puts a partition read from a snapshot in place of whatever `key` held. */
  restore(key: PartitionKey, partition: Partition): void {
    this.#partitions.set(partitionName(key), partition instanceof AdaptivePartition ? partition : new AdaptivePartition(partition.dim, this.#exactLimit, partition));
  }

  /** Every partition that holds something, with its key (for snapshots). */
  entries(): { key: PartitionKey; partition: Partition }[] {
    return [...this.#partitions].flatMap(([name, partition]) => {
      if (partition.size === 0) return [];
      const [tenantId, modelName, modelVersion] = JSON.parse(name) as [string, string, number];
      return [{ key: { tenantId, modelName, modelVersion }, partition }];
    });
  }

  /** Adds vectors to the partition of `key` (one model version has one dimension). */
  add(key: PartitionKey, dim: number, keys: readonly bigint[], vectors: Float32Array): void {
    const name = partitionName(key);
    let partition = this.#partitions.get(name);
    if (!partition) {
      partition = new AdaptivePartition(dim, this.#exactLimit);
      this.#partitions.set(name, partition);
    }
    partition.add(keys, vectors);
  }

  /** Removes keys from the partition of `key`. */
  remove(key: PartitionKey, keys: readonly bigint[]): void {
    const name = partitionName(key);
    const partition = this.#partitions.get(name);
    if (!partition) return;
    partition.remove(keys);
    if (partition.size === 0) this.#partitions.delete(name);
  }

  /** How many vectors all partitions hold. */
  get size(): number {
    let total = 0;
    for (const partition of this.#partitions.values()) total += partition.size;
    return total;
  }
}
