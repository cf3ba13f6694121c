import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readTsvPairs } from './datasets.js';

describe('pairs TSV', () => {
  it('reads paths with an optional header, and the LFW-names form of the shared splits', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-pairs-'));
    try {
      await writeFile(join(dir, 'paths.tsv'), 'path_a\tpath_b\tsame\na.jpg\t/abs/b.jpg\t1\nc.jpg\td.jpg\t0\n');
      assert.deepEqual(await readTsvPairs(join(dir, 'paths.tsv')), [
        { a: join(dir, 'a.jpg'), b: '/abs/b.jpg', same: true, fold: 0 },
        { a: join(dir, 'c.jpg'), b: join(dir, 'd.jpg'), same: false, fold: 0 },
      ]);
      await writeFile(join(dir, 'names.tsv'), 'fold\tname1\timg1\tname2\timg2\tsame\n2\tAnn_Lee\t1\tAnn_Lee\t12\t1\n');
      assert.deepEqual(await readTsvPairs(join(dir, 'names.tsv'), '/data/lfw_gray'), [
        { a: '/data/lfw_gray/lfw/Ann_Lee/Ann_Lee_0001.jpg', b: '/data/lfw_gray/lfw/Ann_Lee/Ann_Lee_0012.jpg', same: true, fold: 1 },
      ]);
      await writeFile(join(dir, 'bad.tsv'), 'a.jpg\tb.jpg\t1\nc.jpg\td.jpg\tyes\n');
      await assert.rejects(readTsvPairs(join(dir, 'bad.tsv')), /line 2: expected path_a<TAB>path_b<TAB>0\|1/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
