/**
 * Augmentation of aligned face crops (RGB8, row-major), as the design notes give it: rotation
 * ±15°, scale 0.9-1.1, shift ±10%, brightness ±20%, Gaussian noise σ = 0.01 (of the 0-1 range).
 * Written here rather than taken from a library: it is one affine warp with bilinear sampling on
 * a 150x150 crop, and sharp's affine cannot add noise or keep the crop's frame this simply.
 */

import type { Random } from '@faceprint/evaluation';

const uniform = (random: Random, low: number, high: number) => low + (high - low) * random();
const gaussian = (random: Random) => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());

/** A randomly rotated, scaled, shifted, brightened and noised copy of an RGB8 crop. */
export function augmentCrop(pixels: Uint8Array, width: number, height: number, random: Random): Uint8Array {
  const angle = (uniform(random, -15, 15) * Math.PI) / 180;
  const scale = uniform(random, 0.9, 1.1);
  const shiftX = uniform(random, -0.1, 0.1) * width;
  const shiftY = uniform(random, -0.1, 0.1) * height;
  const brightness = uniform(random, 0.8, 1.2);
  const noise = 0.01 * 255;
  const [cx, cy] = [(width - 1) / 2, (height - 1) / 2];
  const [cos, sin] = [Math.cos(angle) / scale, Math.sin(angle) / scale];
  const out = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // The source of each output pixel: the inverse of (rotate and scale about the centre, then shift).
      const dx = x - cx - shiftX;
      const dy = y - cy - shiftY;
      const sx = cos * dx + sin * dy + cx;
      const sy = -sin * dx + cos * dy + cy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      for (let c = 0; c < 3; c++) {
        const at = (px: number, py: number) => (px < 0 || py < 0 || px >= width || py >= height ? 0 : pixels[(py * width + px) * 3 + c]!);
        const value = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
        out[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(value * brightness + noise * gaussian(random))));
      }
    }
  }
  return out;
}
