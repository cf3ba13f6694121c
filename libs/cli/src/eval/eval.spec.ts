/**
 * The eval commands end to end, as a user runs them (`npx faceprint eval ...`), on small real
 * subsets: identity crops for verification, the first FDDB images for detection.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '@faceprint/mesh';
import { ModelRegistry } from '@faceprint/model-registry';
import { IDENTITIES_DIR, MODEL_MIRROR, SHARED_DIR, skipUnlessPresent, testModelRegistry } from '@faceprint/testing';
import sharp from 'sharp';

const run = promisify(execFile);
const FDDB = join(SHARED_DIR, 'datasets/fddb');

async function faceprint(args: string[], registry?: string, more: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const env = { ...process.env, FACEPRINT_MODEL_REGISTRY: registry ?? (await testModelRegistry()), FACEPRINT_MODEL_MIRROR: MODEL_MIRROR, ...more };
  const { stdout } = await run(join(REPO_ROOT, 'node_modules/.bin/faceprint'), args, { cwd: REPO_ROOT, env, maxBuffer: 1 << 24 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

describe('faceprint eval', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faceprint-eval-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('verify: scores a TSV of pairs and reports the protocol figures', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const people = (await readdir(IDENTITIES_DIR)).sort();
    const lines = ['path_a\tpath_b\tsame'];
    for (const [i, person] of people.entries()) {
      lines.push(`${person}/${person}1.png\t${person}/${person}2.png\t1`, `${person}/${person}3.png\t${person}/${person}4.png\t1`);
      const other = people[(i + 1) % people.length]!;
      lines.push(`${person}/${person}1.png\t${other}/${other}1.png\t0`, `${person}/${person}5.png\t${other}/${other}3.png\t0`);
    }
    const tsv = join(dir, 'pairs.tsv');
    await writeFile(tsv, `${lines.join('\n')}\n`);
    const plot = join(dir, 'roc.png');
    // A health-only port set for the whole pod (as k8s/ does) is the calling process's: the
    // services the command starts for itself must not all try to take it.
    const podHealthPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const report = await faceprint(['eval', 'verify', '--tsv', tsv, '--root', IDENTITIES_DIR, '--face', 'central', '--plot', plot, '--json'], undefined, { FACEPRINT_HEALTH_PORT: String(podHealthPort) });
    assert.equal(report.pairs, 32);
    assert.equal(report.failed_to_detect, 0);
    assert.ok((report.accuracy as number) >= 0.9, `accuracy ${String(report.accuracy)}`);
    assert.ok((report.auc as number) >= 0.95, `auc ${String(report.auc)}`);
    assert.deepEqual(Object.keys(report.tar_at_far as object).sort(), ['1e-2', '1e-3']);
    assert.equal(typeof report.accuracy_std, 'number');
    assert.deepEqual([...(await readFile(plot)).subarray(1, 4)], [...Buffer.from('PNG')]);
  });

  it('verify --all-pairs: every comparison of the listed images, FAR down to 1e-6 with counts and bounds, a fixed threshold, bad images counted', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const lines = ['path\tidentity\tcondition']; // the columns by name, path first
    for (const person of (await readdir(IDENTITIES_DIR)).sort()) {
      for (const [i, file] of (await readdir(join(IDENTITIES_DIR, person))).sort().entries()) lines.push(`${join(IDENTITIES_DIR, person, file)}\t${person}\t${i < 2 ? 'first' : 'later'}`);
    }
    // One image as PGM (converted for the services), one file that is no image: counted, not fatal.
    const [firstPath, firstPerson] = lines[1]!.split('\t') as [string, string, string];
    const { data, info } = await sharp(firstPath).grayscale().raw().toBuffer({ resolveWithObject: true });
    await writeFile(join(dir, 'face.pgm'), Buffer.concat([Buffer.from(`P5 ${info.width} ${info.height} 255\n`), data]));
    await writeFile(join(dir, 'broken.jpg'), 'not an image');
    lines.push(`${join(dir, 'face.pgm')}\t${firstPerson}\tconverted`, `${join(dir, 'broken.jpg')}\t${firstPerson}\tconverted`);
    const identities = join(dir, 'all.tsv');
    await writeFile(identities, `${lines.join('\n')}\n`);
    const registry = await testModelRegistry();
    const recorded = (await new ModelRegistry(registry).readManifest('face-recognition-net', 1)).thresholds.find((t) => t.far === 1e-3)!;
    const plot = join(dir, 'det.png');
    const report = await faceprint(['eval', 'verify', '--all-pairs', '--identities', identities, '--face', 'central', '--model-far', '1e-3', '--plot', plot, '--json'], registry);
    assert.equal(report.images, 42);
    assert.equal(report.unreadable_images, 1, JSON.stringify(report.unreadable));
    assert.match((report.unreadable as { path: string }[])[0]!.path, /broken\.jpg$/);
    assert.equal(report.failed_to_detect, 0, 'the PGM copy was embedded');
    // 8 people x 5 crops, one of them with 7 images: genuine 7*10 + 21, impostor C(42,2) - 91.
    assert.equal(report.genuine_pairs, 7 * 10 + 21);
    assert.equal(report.impostor_pairs, (42 * 41) / 2 - 91);
    assert.deepEqual(Object.keys(report.tar_at_far as object), ['1e-3', '1e-4', '1e-5', '1e-6']);
    const points = report.far_points as { far: number; false_matches: number; far_upper_95: number; resolvable: boolean }[];
    // 770 impostor comparisons cannot show 1e-3: with none accepted the bound is still 3.9e-3.
    assert.ok(points.every((p) => !p.resolvable && p.false_matches === 0 && Math.abs(p.far_upper_95 - (1 - 0.05 ** (1 / 770))) < 1e-9), JSON.stringify(points));
    const fixed = report.fixed_threshold as { threshold: number; far: number; frr: number; impostors: number; genuine: number; far_upper_95: number };
    assert.equal(fixed.threshold, recorded.threshold, "the serving embedder's recorded threshold for 1e-3");
    assert.deepEqual([fixed.impostors, fixed.genuine], [770, 91]);
    assert.ok(fixed.frr >= 6 / 91 && fixed.frr < 0.5, `FRR ${fixed.frr}: at least the broken image's 6 genuine comparisons fail`);
    assert.ok(fixed.far_upper_95 >= fixed.far);
    assert.deepEqual([...(await readFile(plot)).subarray(1, 4)], [...Buffer.from('PNG')]);

    // Per condition: the comparisons with an image of it, at the same fixed threshold.
    const rows = lines.slice(1).map((line) => line.split('\t') as [string, string, string]);
    const expected = ['converted', 'first', 'later'].map((condition) => {
      let [genuine, impostors] = [0, 0];
      rows.forEach(([, identity, c], i) => rows.slice(i + 1).forEach(([, other, d]) => (c === condition || d === condition) && (identity === other ? genuine++ : impostors++)));
      return { condition, images: rows.filter(([, , c]) => c === condition).length, genuine, impostors };
    });
    const byCondition = report.by_condition as { condition: string; images: number; genuine: number; impostors: number; failed_to_detect: number; unreadable_images: number; threshold: number }[];
    assert.deepEqual(byCondition.map(({ condition, images, genuine, impostors }) => ({ condition, images, genuine, impostors })), expected);
    assert.deepEqual(byCondition.map((c) => [c.condition, c.unreadable_images, c.failed_to_detect]), [['converted', 1, 0], ['first', 0, 0], ['later', 0, 0]]);
    assert.ok(byCondition.every((c) => c.threshold === recorded.threshold));

    const help = await run(join(REPO_ROOT, 'node_modules/.bin/faceprint'), ['eval', 'verify', '--help'], { cwd: REPO_ROOT });
    assert.match(help.stdout, /--all-pairs/);
  });

  it('calibrate: thresholds from every genuine and impostor pair, recorded with their counts and bounds only where the data can show the rate', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const lines = ['identity\tpath'];
    for (const person of (await readdir(IDENTITIES_DIR)).sort()) {
      for (const file of (await readdir(join(IDENTITIES_DIR, person))).sort()) lines.push(`${person}\t${person}/${file}`);
    }
    const tsv = join(dir, 'identities.tsv');
    await writeFile(tsv, `${lines.join('\n')}\n`);
    const registry = join(dir, 'registry'); // a copy: recording changes a manifest
    await cp(await testModelRegistry(), registry, { recursive: true });
    const calibrateArgs = ['eval', 'calibrate', '--identities', tsv, '--root', IDENTITIES_DIR, '--face', 'central', '--dataset', 'test-identities', '--json'];
    const before = await new ModelRegistry(registry).readManifest('face-recognition-net', 1);
    // 700 impostor pairs cannot show 1e-3, 1e-4 or 1e-5: nothing is recorded, and it says why.
    const refused = await run(join(REPO_ROOT, 'node_modules/.bin/faceprint'), [...calibrateArgs, '--record'], { cwd: REPO_ROOT, env: { ...process.env, FACEPRINT_MODEL_REGISTRY: registry } }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /nothing to record: 700 impostor pairs at the most cannot show a false-match rate of 0.001, 0.0001, 0.00001 \(that needs at least 3000\)/);
    assert.deepEqual((await new ModelRegistry(registry).readManifest('face-recognition-net', 1)).thresholds, before.thresholds, 'the manifest is unchanged');

    const report = await faceprint([...calibrateArgs, '--far', '1e-2,1e-3', '--record'], registry);
    assert.equal(report.images, 40);
    assert.equal(report.genuine_pairs, 8 * 10);
    assert.equal(report.impostor_pairs, (40 * 39) / 2 - 80);
    const thresholds = report.thresholds as { far: number; threshold: number; tar: number; false_accepts: number; far_upper_95: number; resolvable: boolean }[];
    assert.deepEqual(thresholds.map((t) => [t.far, t.resolvable]), [[1e-2, true], [1e-3, false]]);
    assert.ok(thresholds[0]!.false_accepts <= 7 && thresholds[0]!.tar > 0.5 && thresholds[0]!.far_upper_95 > thresholds[0]!.false_accepts / 700, JSON.stringify(thresholds));
    assert.deepEqual([report.recorded_fars, report.unsupported_fars], [[1e-2], [1e-3]]);
    // Of 1e-2 / k (k = 2..10) the 700 pairs can show only 1e-2 / 2: a verify over the best of 2 templates at 1e-2.
    assert.deepEqual(report.recorded_per_comparison_fars, [5e-3]);
    const manifest = await new ModelRegistry(registry).readManifest('face-recognition-net', 1);
    assert.deepEqual(manifest.thresholds.map((t) => [t.far, t.dataset, t.impostorPairs, t.perComparison]), [[1e-2, 'test-identities', 700n, false], [5e-3, 'test-identities', 700n, true]]);
    assert.equal(manifest.thresholds[0]!.falseMatches, BigInt(thresholds[0]!.false_accepts));
    assert.equal(manifest.thresholds[0]!.farUpper95, thresholds[0]!.far_upper_95);
    assert.equal(manifest.metrics.calibration_impostor_pairs, 700);
  });

  it('multi-sample: each enrolment size and fusion scored on the same probes, with what a fixed threshold does', { skip: skipUnlessPresent(IDENTITIES_DIR) }, async () => {
    const tsv = join(dir, 'identities.tsv'); // written by the calibrate test: 8 people x 5 crops
    const report = await faceprint(['eval', 'multi-sample', '--identities', tsv, '--root', IDENTITIES_DIR, '--face', 'central', '--enrolled', '1,3', '--model-far', '1e-3', '--json']);
    assert.equal(report.identities, 8);
    assert.equal(report.probes, 8 * 2, 'the images from the 4th on');
    const results = report.results as { enrolled: number; fusion: string; genuine_pairs: number; impostor_pairs: number; fixed_threshold: { frr: number } }[];
    assert.deepEqual(results.map((r) => `${r.enrolled} ${r.fusion}`), ['1 max', '1 mean-score', '1 mean-template', '3 max', '3 mean-score', '3 mean-template']);
    for (const r of results) assert.deepEqual([r.genuine_pairs, r.impostor_pairs], [16, 16 * 7]);
    assert.ok(results[3]!.fixed_threshold.frr <= results[0]!.fixed_threshold.frr, 'three templates refuse no more genuine probes than one (best of)');
    // The matcher's rule: three templates, each at the threshold calibrated for 1e-3 / 3 (stricter than 1e-3's).
    const served = report.as_served as { enrolled: number; templates_compared: number; per_comparison_far: number; threshold: number }[];
    assert.deepEqual(served.map((r) => [r.enrolled, r.templates_compared]), [[1, 1], [3, 3]]);
    assert.ok(Math.abs(served[1]!.per_comparison_far - 1e-3 / 3) < 1e-12 && served[1]!.threshold > served[0]!.threshold, JSON.stringify(served));
    const refused = await run(join(REPO_ROOT, 'node_modules/.bin/faceprint'), ['eval', 'multi-sample', '--identities', tsv, '--root', IDENTITIES_DIR, '--enrolled', '5'], { cwd: REPO_ROOT }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--enrolled 5 needs identities with more than 5 images, at least two of them/);
  });

  it('detect: matches FDDB ellipses and counts images missing on disk', { skip: skipUnlessPresent(FDDB) }, async () => {
    const source = await readFile(join(FDDB, 'FDDB-folds/FDDB-fold-01-ellipseList.txt'), 'utf8');
    // The first 12 annotated images, plus one that is not on disk.
    const lines = source.split('\n');
    const entries: string[] = [];
    for (let i = 0, images = 0; images < 12; images++) {
      const count = Number(lines[i + 1]);
      entries.push(...lines.slice(i, i + 2 + count));
      i += 2 + count;
    }
    entries.push('2002/08/11/big/not_there', '1', '10 8 1.5 50 50 1');
    const list = join(dir, 'ellipses.txt');
    await writeFile(list, `${entries.join('\n')}\n`);
    const report = await faceprint(['eval', 'detect', '--fddb', list, '--root', join(FDDB, 'originalPics'), '--input-size', '320', '--json']);
    assert.equal(report.images, 12);
    assert.equal(report.images_missing, 1);
    assert.ok((report.faces as number) >= 12);
    const recall = (report.recall_at_fp as Record<string, number>)['0.1']!;
    assert.ok(recall > 0.6 && recall <= 1, `recall ${recall}`);
    assert.ok((report.ap as number) > 0.6 && (report.max_recall as number) >= recall);
  });
});
