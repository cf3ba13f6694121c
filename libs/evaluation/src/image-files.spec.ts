/** Evaluation sets' image files become what the services accept: netpbm decoded, TIFF converted. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IDENTITIES_DIR, skipUnlessPresent } from '@faceprint/testing';
import sharp from 'sharp';
import { decodeNetpbm, readImageForServices } from './image-files.js';

/** A real face crop's pixels, gray and colour. */
async function faceCrop(): Promise<{ gray: Buffer; rgb: Buffer; width: number; height: number }> {
  const person = (await readdir(IDENTITIES_DIR)).sort()[0]!;
  const file = join(IDENTITIES_DIR, person, (await readdir(join(IDENTITIES_DIR, person))).sort()[0]!);
  const gray = await sharp(file).grayscale().raw().toBuffer({ resolveWithObject: true });
  const rgb = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer();
  return { gray: gray.data, rgb, width: gray.info.width, height: gray.info.height };
}

describe('evaluation image files', { skip: skipUnlessPresent(IDENTITIES_DIR) }, () => {
  it('decodes binary and ASCII netpbm, gray and colour, to the pixels they hold', async () => {
    const { gray, rgb, width, height } = await faceCrop();
    const p5 = Buffer.concat([Buffer.from(`P5\n# a comment\n${width} ${height}\n255\n`), gray]);
    assert.deepEqual(Buffer.from(decodeNetpbm(p5)!.data), gray);
    const p6 = Buffer.concat([Buffer.from(`P6 ${width} ${height} 255\n`), rgb]);
    const colour = decodeNetpbm(p6)!;
    assert.deepEqual([colour.width, colour.height, colour.channels], [width, height, 3]);
    assert.deepEqual(Buffer.from(colour.data), rgb);
    const p2 = Buffer.from(`P2\n${width} ${height}\n255\n${[...gray].join(' ')}\n`);
    assert.deepEqual(Buffer.from(decodeNetpbm(p2)!.data), gray);
    // 16-bit samples scale to 8 bits.
    const wide = Buffer.alloc(4);
    wide.writeUInt16BE(65535, 0);
    wide.writeUInt16BE(0, 2);
    assert.deepEqual([...decodeNetpbm(Buffer.concat([Buffer.from('P5 2 1 65535\n'), wide]))!.data], [255, 0]);
    assert.equal(decodeNetpbm(Buffer.from('\x89PNG')), undefined, 'not netpbm');
    assert.throws(() => decodeNetpbm(Buffer.concat([Buffer.from(`P5 ${width} ${height} 255\n`), gray.subarray(0, 10)])), /cut short/);
  });

  it('hands the services PNG for PGM and TIFF, and accepted formats as they are', async () => {
    const { gray, width, height } = await faceCrop();
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-images-'));
    try {
      await writeFile(join(dir, 'face.pgm'), Buffer.concat([Buffer.from(`P5 ${width} ${height} 255\n`), gray]));
      await writeFile(join(dir, 'face.tif'), await sharp(gray, { raw: { width, height, channels: 1 } }).tiff({ compression: 'lzw' }).toBuffer()); // lossless (sharp's default is JPEG inside TIFF)
      const png = await sharp(gray, { raw: { width, height, channels: 1 } }).png().toBuffer();
      await writeFile(join(dir, 'face.png'), png);
      for (const name of ['face.pgm', 'face.tif']) {
        const bytes = await readImageForServices(join(dir, name));
        assert.equal((await sharp(bytes).metadata()).format, 'png', name);
        assert.deepEqual(await sharp(bytes).extractChannel(0).raw().toBuffer(), gray, `${name}: the same pixels`);
      }
      assert.deepEqual(Buffer.from(await readImageForServices(join(dir, 'face.png'))), png, 'PNG goes as it is');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
