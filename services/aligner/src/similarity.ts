/**
 * Similarity transforms (rotation, uniform scale, translation; never a reflection) fitted by least
 * squares, and a bilinear warp. Written here because sharp's affine is slow for this (5-18 ms per
 * warp, and its canvas ignores the translation: shared/STACK.md) while an inverse-mapping warp
 * into a 112-150 px crop takes well under a millisecond.
 */
import type { RgbImage } from '@faceprint/imaging';

/** A point (x, y). */
export type Point = readonly [x: number, y: number];

/** x' = a*x - b*y + tx, y' = b*x + a*y + ty. */
export interface Similarity {
  readonly a: number;
  readonly b: number;
  readonly tx: number;
  readonly ty: number;
}

/**
 * The least-squares similarity mapping `from` onto `to` (Umeyama's method restricted to 2-D
 * similarities, whose closed form has no reflection). Throws when the points are degenerate.
 */
export function fitSimilarity(from: readonly Point[], to: readonly Point[]): Similarity {
  if (from.length !== to.length || from.length < 2) throw new Error('need at least two point pairs');
  const n = from.length;
  const mean = (points: readonly Point[]): Point => [points.reduce((s, p) => s + p[0], 0) / n, points.reduce((s, p) => s + p[1], 0) / n];
  const [fx, fy] = mean(from);
  const [tx, ty] = mean(to);
  let dot = 0;
  let cross = 0;
  let norm = 0;
  for (let i = 0; i < n; i++) {
    const x = from[i]![0] - fx;
    const y = from[i]![1] - fy;
    const u = to[i]![0] - tx;
    const v = to[i]![1] - ty;
    dot += x * u + y * v;
    cross += x * v - y * u;
    norm += x * x + y * y;
  }
  if (norm < 1e-9) throw new Error('the source points coincide');
  const a = dot / norm;
  const b = cross / norm;
  return { a, b, tx: tx - (a * fx - b * fy), ty: ty - (b * fx + a * fy) };
}

/** Applies a similarity to a point. */
export function apply(t: Similarity, [x, y]: Point): Point {
  return [t.a * x - t.b * y + t.tx, t.b * x + t.a * y + t.ty];
}

/** Root-mean-square distance between the mapped `from` points and `to`. */
export function fitError(t: Similarity, from: readonly Point[], to: readonly Point[]): number {
  const sum = from.reduce((s, p, i) => {
    const [x, y] = apply(t, p);
    return s + (x - to[i]![0]) ** 2 + (y - to[i]![1]) ** 2;
  }, 0);
  return Math.sqrt(sum / from.length);
}

/**
 * Warps `image` into a `width` x `height` RGB crop: each crop pixel centre is mapped back through
 * the inverse transform and sampled bilinearly; pixels from outside the image are black.
 */
export function warp(image: RgbImage, t: Similarity, width: number, height: number): Uint8Array {
  const det = t.a * t.a + t.b * t.b;
  // Inverse of [[a, -b], [b, a]] is [[a, b], [-b, a]] / det.
  const ia = t.a / det;
  const ib = t.b / det;
  // A clamped array rounds on assignment, so the loop needs no Math.round.
  const out = new Uint8ClampedArray(width * height * 3);
  const { data, width: w, height: h } = image;
  // Kept free of closures and allocations: this loop runs for every crop pixel.
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const du = u - t.tx;
      const dv = v - t.ty;
      const x = ia * du + ib * dv;
      const y = -ib * du + ia * dv;
      const x0 = Math.floor(x);
      const y0 = Math.floor(y);
      const fx = x - x0;
      const fy = y - y0;
      const w00 = (1 - fx) * (1 - fy);
      const w10 = fx * (1 - fy);
      const w01 = (1 - fx) * fy;
      const w11 = fx * fy;
      const inX0 = x0 >= 0 && x0 < w;
      const inX1 = x0 + 1 >= 0 && x0 + 1 < w;
      const inY0 = y0 >= 0 && y0 < h;
      const inY1 = y0 + 1 >= 0 && y0 + 1 < h;
      const i00 = inX0 && inY0 ? (y0 * w + x0) * 3 : -1;
      const i10 = inX1 && inY0 ? (y0 * w + x0 + 1) * 3 : -1;
      const i01 = inX0 && inY1 ? ((y0 + 1) * w + x0) * 3 : -1;
      const i11 = inX1 && inY1 ? ((y0 + 1) * w + x0 + 1) * 3 : -1;
      const o = (v * width + u) * 3;
      for (let c = 0; c < 3; c++) {
        const value =
          (i00 >= 0 ? data[i00 + c]! * w00 : 0) +
          (i10 >= 0 ? data[i10 + c]! * w10 : 0) +
          (i01 >= 0 ? data[i01 + c]! * w01 : 0) +
          (i11 >= 0 ? data[i11 + c]! * w11 : 0);
        out[o + c] = value;
      }
    }
  }
  return new Uint8Array(out.buffer);
}
