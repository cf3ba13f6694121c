/**
 * Reads face-api.js weights: a `*-weights_manifest.json` (TF.js weight-manifest format: groups
 * of `.bin` shards, each weight with name, shape, dtype and optional quantization) plus its
 * shards, dequantised to float32. The format carries no topology; the nets define it.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** A float32 tensor in TF.js layout (HWIO filters, row-major). */
export interface WeightTensor {
  /** The dimensions. */
  readonly shape: readonly number[];
  /** The values, row-major. */
  readonly data: Float32Array;
}

interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale: number; min: number };
}

interface ManifestGroup {
  paths: string[];
  weights: ManifestWeight[];
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2 };

/** Weights by name, failing loudly on a name the net asks for but the file lacks. */
export class WeightMap {
  readonly #tensors: ReadonlyMap<string, WeightTensor>;
  readonly #used = new Set<string>();
  /** Where the weights came from, for messages. */
  readonly source: string;

  constructor(tensors: ReadonlyMap<string, WeightTensor>, source: string) {
    this.#tensors = tensors;
    this.source = source;
  }

  /** The tensor `name` with the expected rank; throws naming the weight otherwise. */
  get(name: string, rank: number): WeightTensor {
    const tensor = this.#tensors.get(name);
    if (!tensor) throw new Error(`${this.source}: weight "${name}" is missing`);
    if (tensor.shape.length !== rank) throw new Error(`${this.source}: weight "${name}" has rank ${tensor.shape.length}, expected ${rank}`);
    this.#used.add(name);
    return tensor;
  }

  /** Weights the file holds that the net never asked for: a sign of an unsupported layer. */
  unused(): string[] {
    return [...this.#tensors.keys()].filter((name) => !this.#used.has(name));
  }
}

function dequantize(weight: ManifestWeight, bytes: Buffer, offset: number, count: number): Float32Array {
  const out = new Float32Array(count);
  const storage = weight.quantization?.dtype ?? weight.dtype;
  for (let i = 0; i < count; i++) {
    switch (storage) {
      case 'float32':
        out[i] = bytes.readFloatLE(offset + i * 4);
        break;
      case 'int32':
        out[i] = bytes.readInt32LE(offset + i * 4);
        break;
      case 'uint8':
        out[i] = bytes[offset + i]!;
        break;
      case 'uint16':
        out[i] = bytes.readUInt16LE(offset + i * 2);
        break;
    }
  }
  if (weight.quantization) {
    const { scale, min } = weight.quantization;
    for (let i = 0; i < count; i++) out[i] = out[i]! * scale + min;
  }
  return out;
}

/**
 * Loads every weight of a weight manifest. Throws an error naming the file and the weight for a
 * missing or truncated shard, an unsupported dtype, or trailing bytes (a corrupt file).
 */
export async function readWeights(manifestPath: string): Promise<WeightMap> {
  let groups: ManifestGroup[];
  try {
    groups = JSON.parse(await readFile(manifestPath, 'utf8')) as ManifestGroup[];
    if (!Array.isArray(groups)) throw new Error('not a list of weight groups');
  } catch (error) {
    throw new Error(`${manifestPath}: not a weight manifest: ${(error as Error).message}`, { cause: error });
  }
  const tensors = new Map<string, WeightTensor>();
  for (const group of groups) {
    const shards = await Promise.all(group.paths.map((path) => readFile(join(dirname(manifestPath), path))));
    const bytes = Buffer.concat(shards);
    let offset = 0;
    for (const weight of group.weights) {
      const storage = weight.quantization?.dtype ?? weight.dtype;
      const size = BYTES_PER_ELEMENT[storage];
      if (size === undefined) throw new Error(`${manifestPath}: weight "${weight.name}" has unsupported dtype ${storage}`);
      const count = weight.shape.reduce((a, b) => a * b, 1);
      if (offset + count * size > bytes.length) {
        throw new Error(`${manifestPath}: shard ${group.paths.join('+')} is truncated: weight "${weight.name}" needs bytes up to ${offset + count * size}, the shard has ${bytes.length}`);
      }
      tensors.set(weight.name, { shape: weight.shape, data: dequantize(weight, bytes, offset, count) });
      offset += count * size;
    }
    if (offset !== bytes.length) {
      throw new Error(`${manifestPath}: shard ${group.paths.join('+')} has ${bytes.length - offset} bytes more than its weights: corrupt or mismatched`);
    }
  }
  return new WeightMap(tensors, manifestPath);
}
