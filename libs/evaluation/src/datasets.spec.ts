import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { detectPairsFormat, readIdentities, readPairs, readTsvPairs } from './datasets.js';

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
        { a: '/data/lfw_gray/lfw/Ann_Lee/Ann_Lee_0001.jpg', b: '/data/lfw_gray/lfw/Ann_Lee/Ann_Lee_0012.jpg', same: true, fold: 1, identities: ['Ann_Lee', 'Ann_Lee'] },
      ]);
      await writeFile(join(dir, 'bad.tsv'), 'a.jpg\tb.jpg\t1\nc.jpg\td.jpg\tyes\n');
      await assert.rejects(readTsvPairs(join(dir, 'bad.tsv')), /line 2: expected path_a<TAB>path_b<TAB>0\|1/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes an optional fold column, numbered from 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-pairs-'));
    try {
      await writeFile(join(dir, 'folds.tsv'), 'a.jpg\tb.jpg\t1\t1\nc.jpg\td.jpg\t0\t3\n');
      assert.deepEqual((await readTsvPairs(join(dir, 'folds.tsv'))).map((p) => p.fold), [0, 2]);
      await writeFile(join(dir, 'bad-fold.tsv'), 'a.jpg\tb.jpg\t1\t0\n');
      await assert.rejects(readTsvPairs(join(dir, 'bad-fold.tsv')), /line 1: the fold must be a number from 1, got "0"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('pairs file format', () => {
  it('is read from the content, whatever the file is called, and an unknown one is an error that says what was expected', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-pairs-'));
    try {
      // LFW View 2 in a file named .tsv, a TSV of paths named .txt.
      await writeFile(join(dir, 'lfw.tsv'), '10\t300\nAbel_Pacheco\t1\t4\nAbel_Pacheco\t2\tAlan_Ball\t1\n');
      await writeFile(join(dir, 'paths.txt'), 'path_a\tpath_b\tsame\nx/a.jpg\ty/b.jpg\t0\n');
      assert.equal(await detectPairsFormat(join(dir, 'lfw.tsv')), 'lfw');
      assert.equal(await detectPairsFormat(join(dir, 'paths.txt')), 'tsv');
      const lfw = await readPairs(join(dir, 'lfw.tsv'), '/data');
      assert.deepEqual(lfw.map((p) => [p.same, p.identities]), [[true, ['Abel_Pacheco', 'Abel_Pacheco']], [false, ['Abel_Pacheco', 'Alan_Ball']]]);
      assert.equal(lfw[1]!.b, '/data/lfw/Alan_Ball/Alan_Ball_0001.jpg');
      await writeFile(join(dir, 'notes.txt'), 'these are my favourite pairs\nand more\n');
      await assert.rejects(readPairs(join(dir, 'notes.txt')), /not a pairs file faceprint reads: expected LFW pairs .* or a TSV of path_a<TAB>path_b<TAB>0\|1.*first line: "these are my favourite pairs"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('identities TSV', () => {
  it('finds the identity and path columns by their header names, in either order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-identities-'));
    try {
      await writeFile(join(dir, 'a.tsv'), 'path\tsession\tidentity\nann/1.png\tday1\tann\n/abs/bob.png\tday2\tbob\n');
      assert.deepEqual(await readIdentities(join(dir, 'a.tsv')), [
        { identity: 'ann', path: join(dir, 'ann/1.png') },
        { identity: 'bob', path: '/abs/bob.png' },
      ]);
      await writeFile(join(dir, 'b.tsv'), 'ann\tann/1.png\n');
      assert.deepEqual(await readIdentities(join(dir, 'b.tsv')), [{ identity: 'ann', path: join(dir, 'ann/1.png') }], 'headerless: identity, then path');
      await writeFile(join(dir, 'c.tsv'), 'path\tname\nann/1.png\tann\n');
      await assert.rejects(readIdentities(join(dir, 'c.tsv')), /the header must name both an "identity" and a "path" column/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
