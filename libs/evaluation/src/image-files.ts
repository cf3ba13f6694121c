/**
 * Image files as the services take them. The services accept JPEG, PNG, WebP and GIF; evaluation
 * sets also come as PGM/PPM (netpbm: Yale, AT&T, FERET) or TIFF, which are converted to PNG here
 * first, so a dataset never fails for its container format.
 */
import { readFile } from 'node:fs/promises';
import { ACCEPTED_FORMATS } from '@faceprint/imaging';
import sharp from 'sharp';

/** A netpbm image (P2/P5 gray, P3/P6 colour) decoded to raw pixels. */
interface RawImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
}

/**
 * Decodes netpbm's gray and colour maps, ASCII (P2, P3) and binary (P5, P6), 8 or 16 bits.
 * Written here because sharp (libvips without its netpbm loader in the prebuilt binaries) does
 * not read them and no maintained npm decoder covers all four; the format is a header of
 * whitespace-separated numbers followed by the samples.
 */
export function decodeNetpbm(bytes: Uint8Array): RawImage | undefined {
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0);
  if (!['P2', 'P3', 'P5', 'P6'].includes(magic)) return undefined;
  const channels = magic === 'P3' || magic === 'P6' ? 3 : 1;
  // Header: magic, width, height, maxval, separated by whitespace, with # comments to line end.
  const header: number[] = [];
  let i = 2;
  while (header.length < 3 && i < bytes.length) {
    const c = bytes[i]!;
    if (c === 0x23) while (i < bytes.length && bytes[i] !== 0x0a) i++;
    else if (c >= 0x30 && c <= 0x39) {
      let value = 0;
      while (i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39) value = value * 10 + bytes[i++]! - 0x30;
      header.push(value);
      continue;
    }
    i++;
  }
  const [width, height, maxval] = header as [number, number, number];
  if (!(width > 0 && height > 0 && maxval > 0 && maxval < 65536)) throw new Error(`a ${magic} image with a bad header (${header.join(' ')})`);
  const samples = width * height * channels;
  const data = new Uint8Array(samples);
  const scale = (v: number) => Math.round((Math.min(v, maxval) * 255) / maxval);
  if (magic === 'P5' || magic === 'P6') {
    const start = i + 1; // one whitespace byte after maxval
    const wide = maxval > 255;
    if (bytes.length < start + samples * (wide ? 2 : 1)) throw new Error(`a ${magic} image cut short`);
    for (let s = 0; s < samples; s++) data[s] = scale(wide ? (bytes[start + 2 * s]! << 8) | bytes[start + 2 * s + 1]! : bytes[start + s]!);
  } else {
    const values = new TextDecoder().decode(bytes.subarray(i)).replace(/#[^\n]*/g, ' ').trim().split(/\s+/);
    if (values.length < samples) throw new Error(`a ${magic} image cut short`);
    for (let s = 0; s < samples; s++) data[s] = scale(Number(values[s]));
  }
  return { data, width, height, channels };
}

/** The file's bytes in a format the services accept (converted to PNG where needed). */
export async function readImageForServices(path: string): Promise<Uint8Array> {
  const bytes = await readFile(path);
  const netpbm = decodeNetpbm(bytes);
  if (netpbm) return sharp(netpbm.data, { raw: { width: netpbm.width, height: netpbm.height, channels: netpbm.channels } }).png().toBuffer();
  const { format } = await sharp(bytes).metadata();
  return format && ACCEPTED_FORMATS.includes(format) ? bytes : sharp(bytes).png().toBuffer();
}
