import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, it } from 'node:test';
import { IMAGE_MAX_PIXELS } from '@faceprint/contracts';
import { SHARED_DIR, skipUnlessPresent } from '@faceprint/testing';
import sharp, { type Sharp } from 'sharp';
import { decodeImage, ImageDecodeError } from './decode.js';

const rejectsWith = (pattern: RegExp) => (error: unknown) => error instanceof ImageDecodeError && pattern.test(error.message);

/** A 4x2 image whose left half is red and right half blue. */
function redBlue(): Sharp {
  const pixels = Buffer.alloc(4 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) pixels.set(x < 2 ? [255, 0, 0] : [0, 0, 255], (y * 4 + x) * 3);
  return sharp(pixels, { raw: { width: 4, height: 2, channels: 3 } });
}

describe('decodeImage', () => {
  it('decodes PNG, WebP and GIF to RGB', async () => {
    for (const format of ['png', 'webp', 'gif'] as const) {
      const image = await decodeImage(await redBlue().toFormat(format, { lossless: true }).toBuffer());
      assert.deepEqual([image.width, image.height, image.format], [4, 2, format]);
      assert.deepEqual([...image.data.subarray(0, 3)], [255, 0, 0], format);
    }
  });

  it('applies EXIF orientation, so coordinates refer to the upright image', async () => {
    // Orientation 6: the stored pixels must be turned 90 degrees clockwise to be upright.
    const jpeg = await redBlue().jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const image = await decodeImage(jpeg);
    assert.deepEqual([image.width, image.height], [2, 4]);
    const top = image.data.subarray(0, 3);
    assert.ok(top[0]! > 200 && top[2]! < 60, `the red half is on top after rotation (got ${[...top].join(', ')})`);
  });

  it('expands grayscale and flattens alpha onto white', async () => {
    const gray = await decodeImage(await sharp({ create: { width: 2, height: 2, channels: 3, background: '#808080' } }).toColourspace('b-w').png().toBuffer());
    assert.equal(gray.data.length, 2 * 2 * 3);
    const transparent = await decodeImage(await sharp({ create: { width: 2, height: 2, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer());
    assert.deepEqual([...transparent.data.subarray(0, 3)], [255, 255, 255]);
  });

  it('refuses empty, unsupported, corrupt and oversized images with a clear message', async () => {
    await assert.rejects(decodeImage(new Uint8Array()), rejectsWith(/the image is empty/));
    await assert.rejects(decodeImage(new TextEncoder().encode('not an image at all')), rejectsWith(/corrupt, truncated or not a jpeg, png, webp, gif file/));
    const tiff = await redBlue().tiff().toBuffer();
    await assert.rejects(decodeImage(tiff), rejectsWith(/unsupported image format tiff/));
    const jpeg = await redBlue().resize(64, 64).jpeg().toBuffer();
    await assert.rejects(decodeImage(jpeg.subarray(0, jpeg.length / 2)), rejectsWith(/corrupt|truncated/));
    await assert.rejects(decodeImage(jpeg, { maxPixels: 1000 }), rejectsWith(/64x64 \(4096 pixels\); the limit is 1000 pixels/));
  });

  it('names the pixel limit for images beyond sharp\'s own limit too (20000x20000, 60000x60000), never "corrupt"', async () => {
    // Small files whose headers claim huge images, as a decompression bomb's would.
    const png = await redBlue().png().toBuffer();
    const jpeg = await redBlue().jpeg().toBuffer();
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    for (const size of [20_000, 60_000]) {
      const bigPng = Buffer.from(png);
      bigPng.writeUInt32BE(size, 16); // IHDR width, height, then its CRC
      bigPng.writeUInt32BE(size, 20);
      bigPng.writeUInt32BE(crc32(bigPng.subarray(12, 29)) >>> 0, 29);
      const bigJpeg = Buffer.from(jpeg);
      bigJpeg.writeUInt16BE(size, sof + 5); // SOF0 height, width
      bigJpeg.writeUInt16BE(size, sof + 7);
      const limit = new RegExp(`the image is ${size}x${size} \\(${size * size} pixels\\); the limit is ${IMAGE_MAX_PIXELS} pixels`);
      await assert.rejects(decodeImage(bigPng), rejectsWith(limit), `png ${size}`);
      await assert.rejects(decodeImage(bigJpeg), rejectsWith(limit), `jpeg ${size}`);
    }
  });

  it('decodes the real test photos', { skip: skipUnlessPresent(join(SHARED_DIR, 'models/test-images')) }, async () => {
    const group = await decodeImage(await readFile(join(SHARED_DIR, 'models/test-images/groups/bbt1.jpg')));
    assert.ok(group.width > 0 && group.data.length === group.width * group.height * 3);
  });
});
