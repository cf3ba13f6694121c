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
  const out = new Uint8Array(width * height * 3);
  const { data, width: w, height: h } = image;
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
      const o = (v * width + u) * 3;
      for (let c = 0; c < 3; c++) {
        const sample = (xi: number, yi: number) => (xi < 0 || yi < 0 || xi >= w || yi >= h ? 0 : data[(yi * w + xi) * 3 + c]!);
        const top = sample(x0, y0) * (1 - fx) + sample(x0 + 1, y0) * fx;
        const bottom = sample(x0, y0 + 1) * (1 - fx) + sample(x0 + 1, y0 + 1) * fx;
        out[o + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return out;
}
