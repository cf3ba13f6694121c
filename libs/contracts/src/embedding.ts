/**
 * The wire form of embeddings: `bytes` holding little-endian float32 values. `bytes` encodes
 * and decodes several times faster than `repeated float` (see shared/STACK.md).
 */

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Encodes a vector as little-endian float32 bytes. */
export function encodeEmbedding(vector: Float32Array): Uint8Array {
  if (hostIsLittleEndian) {
    return new Uint8Array(vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength));
  }
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  vector.forEach((value, i) => view.setFloat32(i * 4, value, true));
  return bytes;
}

/**
 * Decodes little-endian float32 bytes. Throws a RangeError when the byte length is not
 * `4 * dim`; callers turn that into INVALID_ARGUMENT on the field they decoded.
 */
export function decodeEmbedding(bytes: Uint8Array, dim: number): Float32Array {
  if (bytes.byteLength !== dim * 4) {
    throw new RangeError(`expected ${dim * 4} bytes for dim ${dim}, got ${bytes.byteLength}`);
  }
  if (hostIsLittleEndian) {
    // Copy into a fresh buffer: the source may be a view into a larger, unaligned one (and a
    // Node Buffer's slice() is such a view, not a copy).
    return new Float32Array(new Uint8Array(bytes).buffer);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: dim }, (_, i) => view.getFloat32(i * 4, true));
}

/** Cosine similarity of two L2-normalised embeddings (their dot product). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot;
}
