/**
 * `faceprint eval verify`: images through the detector, aligner and embedder over gRPC, scored
 * by cosine similarity. Two protocols:
 * - the pairs of a pairs file (LFW's: 10-fold accuracy with the threshold chosen on the other nine
 *   folds, AUC, TAR at FAR over the file's pairs);
 * - `--all-pairs`: every pair of the listed images, genuine within an identity and impostor across,
 *   so that false-match rates down to 1e-6 are measured on millions of impostor comparisons, each
 *   with its count and a 95% upper bound.
 * `--threshold T` or `--model-far F` reports what a threshold fixed in advance does on this data.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  embedImages,
  errorRates,
  operatingPoint,
  qualityCurve,
  ratesAt,
  readIdentities,
  readPairs,
  REPORTED_FARS,
  scoreAllPairs,
  scorePairs,
  tarAtFar,
  thresholdForFar,
  verificationMetrics,
  type AllPairsScores,
  type DiscardPoint,
  type DiscardRates,
  type Pair,
  type ScoredPair,
  type ThresholdRates,
} from '@faceprint/evaluation';
import { numberFlag, UsageError } from '../gateway/connection.js';
import { VERIFY_USAGE } from '../usage.js';
import { fixedThresholdReport, modelThreshold } from './fixed-threshold.js';
import { writePlot } from './plot.js';

/** The false-match rates `--all-pairs` reports. */
const ALL_PAIRS_FARS = ['1e-3', '1e-4', '1e-5', '1e-6'] as const;

/** The scores of a pairs file as the all-pairs counts, so that one threshold report serves both. */
function asPairScores(scored: readonly ScoredPair[]): AllPairsScores {
  const descending = (same: boolean) => Float64Array.from(scored.filter((p) => p.same === same && p.score !== -Infinity).map((p) => p.score)).sort().reverse();
  const genuinePairs = scored.filter((p) => p.same).length;
  return { identities: 0, images: 0, failedImages: 0, genuinePairs, impostorPairs: scored.length - genuinePairs, genuine: descending(true), impostor: descending(false) };
}

/** The images of `pairs` with their identities, from the file or from `--identities`. */
function identitiesOfPairs(pairs: readonly Pair[], identityOf: ReadonlyMap<string, string> | undefined): Map<string, string> {
  const images = new Map<string, string>();
  for (const pair of pairs) {
    for (const [i, path] of [pair.a, pair.b].entries()) {
      const identity = identityOf?.get(path) ?? pair.identities?.[i];
      if (!identity) throw new UsageError(`--all-pairs needs the identity of every image: ${path} has none (give --identities FILE, a TSV of identity and path)`);
      images.set(path, identity);
    }
  }
  return images;
}

/** Runs the command; returns the process exit code. */
export async function evalVerify(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pairs: { type: 'string' },
      tsv: { type: 'string' },
      identities: { type: 'string' },
      'all-pairs': { type: 'boolean', default: false },
      threshold: { type: 'string' },
      'model-far': { type: 'string' },
      root: { type: 'string' },
      face: { type: 'string', default: 'largest' },
      refine: { type: 'boolean', default: false },
      flip: { type: 'boolean', default: false },
      calibration: { type: 'string' },
      target: { type: 'string' },
      'detector-input-size': { type: 'string', default: '640' },
      limit: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      scores: { type: 'string' },
      plot: { type: 'string' },
      'quality-curve': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${VERIFY_USAGE}\n`);
    return 0;
  }
  const pairsFile = values.pairs ?? values.tsv;
  const allPairs = values['all-pairs'];
  if (values.pairs && values.tsv) throw new UsageError('give one pairs file: --pairs (its format is read from its content; --tsv is the same flag)');
  if (!pairsFile && !(allPairs && values.identities)) throw new UsageError(`name the images: --pairs FILE, or --all-pairs --identities FILE\n${VERIFY_USAGE}`);
  if (values.face !== 'largest' && values.face !== 'central') throw new UsageError(`--face: largest or central, got "${values.face}"`);
  if (values.threshold !== undefined && values['model-far'] !== undefined) throw new UsageError('give --threshold or --model-far, not both');
  if (allPairs && (values.calibration || values.limit)) throw new UsageError('--calibration and --limit go with a pairs file\'s pairs, not --all-pairs');
  if (values['quality-curve'] && !allPairs) throw new UsageError('--quality-curve discards images, so it goes with --all-pairs');
  if (allPairs && values.scores) throw new UsageError('--scores writes the scores of a pairs file\'s pairs; --all-pairs makes millions (leave it out)');
  const fixedThreshold = numberFlag(values.threshold, '--threshold', (t) => t >= -1 && t <= 1, 'a cosine threshold in [-1, 1]');
  const modelFar = numberFlag(values['model-far'], '--model-far', (f) => f > 0 && f < 1, 'a false-match rate the embedder is calibrated for, e.g. 1e-4');
  const concurrency = numberFlag(values.concurrency, '--concurrency', (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'an integer from 1 to 64')!;
  const limit = numberFlag(values.limit, '--limit', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');

  const labelled = values.identities ? await readIdentities(values.identities, values.root) : [];
  const identityOf = values.identities ? new Map(labelled.map((l) => [l.path, l.identity])) : undefined;
  const conditionOf = new Map(labelled.flatMap((l) => (l.condition ? [[l.path, l.condition] as const] : [])));
  let pairs = pairsFile ? await readPairs(pairsFile, values.root) : [];
  if (limit) {
    const step = Math.max(1, Math.floor(pairs.length / limit));
    pairs = pairs.filter((_, i) => i % step === 0);
  }
  const calibrationPairs = values.calibration ? await readPairs(values.calibration, values.root) : [];
  const imageIdentities = allPairs ? (pairsFile ? identitiesOfPairs(pairs, identityOf) : new Map(identityOf)) : undefined;
  const images = imageIdentities ? [...imageIdentities.keys()] : [...new Set([...pairs, ...calibrationPairs].flatMap((p) => [p.a, p.b]))];

  const started = performance.now();
  const { embeddings, qualities, unreadable, models, embedder, startedServices } = await embedImages(images, {
    face: values.face,
    refine: values.refine,
    flip: values.flip,
    target: values.target,
    detectorInputSize: values['detector-input-size'],
    concurrency,
  });

  // A threshold fixed in advance: given, or the one the serving embedder records for a rate.
  const threshold = modelFar !== undefined ? await modelThreshold(embedder, modelFar) : fixedThreshold;

  const common = {
    images: images.length,
    failed_to_detect: [...embeddings.values()].filter((e) => !e).length - unreadable.size,
    unreadable_images: unreadable.size,
    unreadable: [...unreadable].slice(0, 20).map(([path, reason]) => ({ path, reason })),
    face_choice: values.face,
    refine_landmarks: values.refine,
    flip_average: values.flip,
    detector_input_size: startedServices ? Number(values['detector-input-size']) : 'as deployed',
    models,
  };
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const describeFixed = (rates: ThresholdRates) =>
    `threshold ${rates.threshold.toFixed(4)}${modelFar !== undefined ? ` (the model's for ${modelFar})` : ''}: FAR ${rates.far.toExponential(2)} (${rates.falseMatches} of ${rates.impostors}; 95% upper bound ${rates.farUpper95.toExponential(2)}), FRR ${pct(rates.frr)} (${rates.falseNonMatches} of ${rates.genuine})`;
  const unreadableLine = `unreadable images: ${unreadable.size}${unreadable.size ? ` (first: ${[...unreadable][0]![0]}: ${[...unreadable][0]![1]})` : ''}`;

  if (allPairs) {
    const labelledEmbeddings = images.map((path) => ({ path, identity: imageIdentities!.get(path)!, embedding: embeddings.get(path), ...(conditionOf.has(path) ? { condition: conditionOf.get(path)! } : {}) }));
    const scores = scoreAllPairs(labelledEmbeddings);
    const points = ALL_PAIRS_FARS.map((far) => operatingPoint(scores, Number(far)));
    const fixed = threshold === undefined ? undefined : ratesAt(scores, threshold);
    // Per capture condition (the identities file's `condition` column): the comparisons with an
    // image of that condition, at the fixed threshold, else at the whole set's 1e-3 threshold.
    const conditionThreshold = threshold ?? points[0]!.threshold;
    const byCondition = [...new Set(conditionOf.values())].sort().map((condition) => {
      const ofCondition = labelledEmbeddings.filter((image) => image.condition === condition);
      const rates = ratesAt(scoreAllPairs(labelledEmbeddings, (a, b) => a.condition === condition || b.condition === condition), conditionThreshold);
      const unreadableHere = ofCondition.filter((image) => unreadable.has(image.path)).length;
      return { condition, images: ofCondition.length, failed_to_detect: ofCondition.filter((image) => !image.embedding).length - unreadableHere, unreadable_images: unreadableHere, ...fixedThresholdReport(rates) };
    });
    const curve = values['quality-curve']
      ? qualityCurve(labelledEmbeddings.map((image) => ({ ...image, quality: qualities.get(image.path) })), QUALITY_DISCARDS, QUALITY_CURVE_FARS)
      : undefined;
    const report = {
      dataset: pairsFile ?? values.identities,
      protocol: 'all pairs (every genuine and impostor comparison of the images)',
      ...common,
      identities: scores.identities,
      genuine_pairs: scores.genuinePairs,
      impostor_pairs: scores.impostorPairs,
      tar_at_far: Object.fromEntries(ALL_PAIRS_FARS.map((far, i) => [far, points[i]!.tar])),
      far_points: points.map((p) => ({ far: p.targetFar, threshold: p.threshold, tar: p.tar, false_matches: p.falseMatches, measured_far: p.far, far_upper_95: p.farUpper95, resolvable: p.resolvable })),
      ...(fixed ? { fixed_threshold: fixedThresholdReport(fixed) } : {}),
      ...(byCondition.length ? { by_condition: byCondition, by_condition_threshold: threshold === undefined ? 'the 1e-3 threshold of the whole set' : 'the fixed threshold' } : {}),
      ...(curve ? { quality_curve: curve.map(qualityCurveJson) } : {}),
      seconds: (performance.now() - started) / 1000,
    };
    if (values.plot) await writeDetPlot(values.plot, scores, `${models.embedder ?? 'embedder'}`, `DET: ${report.dataset!.split('/').slice(-2).join('/')} (${scores.impostorPairs} impostor comparisons)`);
    if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write(
        [
          `all pairs of ${report.images} images (${report.identities} identities): ${report.genuine_pairs} genuine, ${report.impostor_pairs} impostor comparisons`,
          ...points.map((p) => `TAR at FAR ${p.targetFar.toExponential(0)}: ${pct(p.tar)} (threshold ${p.threshold.toFixed(4)}, ${p.falseMatches} false matches, 95% upper bound ${p.farUpper95.toExponential(2)}${p.resolvable ? '' : '; too few impostor comparisons to show this rate'})`),
          ...(fixed ? [describeFixed(fixed)] : []),
          ...(byCondition.length ? [`by condition, at ${report.by_condition_threshold} (${conditionThreshold.toFixed(4)}):`] : []),
          ...byCondition.map((c) => `  ${c.condition}: ${c.images} images, ${c.failed_to_detect} without a face; FRR ${pct(c.frr)} (${c.false_non_matches} of ${c.genuine}), FAR ${c.far.toExponential(2)} (${c.false_matches} of ${c.impostors}; bound ${c.far_upper_95.toExponential(2)})`),
          ...(curve ? qualityCurveLines(curve) : []),
          `images without a face: ${report.failed_to_detect}; ${unreadableLine} (their comparisons count as non-matches)`,
          `models: ${models.detector}, ${models.embedder}; face: ${values.face}${values.refine ? ', refined landmarks' : ''}${values.flip ? ', flip-averaged' : ''}; ${report.seconds.toFixed(0)} s`,
        ].join('\n') + '\n',
      );
    }
    return 0;
  }

  const scored = scorePairs(pairs, embeddings);
  const metrics = verificationMetrics(scored);
  const calibrated = calibrationPairs.length
    ? Object.fromEntries(
        REPORTED_FARS.map((far) => {
          const { threshold: t } = tarAtFar(scorePairs(calibrationPairs, embeddings), Number(far));
          const genuine = scored.filter((p) => p.same);
          const impostor = scored.filter((p) => !p.same);
          return [far, { threshold: t, tar: genuine.filter((p) => p.score > t).length / genuine.length, far: impostor.filter((p) => p.score > t).length / impostor.length }];
        }),
      )
    : undefined;
  const fixed = threshold === undefined ? undefined : ratesAt(asPairScores(scored), threshold);
  if (values.scores) {
    await writeFile(values.scores, `path_a\tpath_b\tsame\tfold\tscore\n${pairs.map((p, i) => `${p.a}\t${p.b}\t${p.same ? 1 : 0}\t${p.fold + 1}\t${Number.isFinite(scored[i]!.score) ? scored[i]!.score.toFixed(6) : 'none'}`).join('\n')}\n`);
  }
  const report = {
    dataset: pairsFile,
    pairs: metrics.pairs,
    protocol: metrics.protocol,
    accuracy: metrics.accuracy,
    accuracy_std: metrics.accuracy_std,
    auc: metrics.auc,
    tar_at_far: metrics.tar_at_far,
    threshold_at_far: metrics.threshold_at_far,
    impostor_pairs: scored.filter((p) => !p.same).length,
    calibrated_on: values.calibration,
    calibrated,
    ...(fixed ? { fixed_threshold: fixedThresholdReport(fixed) } : {}),
    ...common,
    failed_pairs: metrics.failed_pairs,
    fallback: 'none: a pair with an undetected face counts as a failed comparison',
    seconds: (performance.now() - started) / 1000,
  };
  if (values.plot) {
    await writePlot(values.plot, [{ label: `${models.embedder ?? 'embedder'}  AUC ${report.auc.toFixed(4)}`, points: metrics.curve.map((c) => ({ x: c.far, y: c.tar })) }], {
      title: `ROC: ${pairsFile!.split('/').slice(-2).join('/')} (${scored.length} pairs)`,
      xLabel: 'false accept rate',
      yLabel: 'true accept rate',
      xLogFrom: 1e-4,
      xMax: 1,
    });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(
      [
        `pairs ${report.pairs} (${report.images} images), ${report.protocol}`,
        `accuracy ${pct(report.accuracy)} ± ${pct(report.accuracy_std)}   AUC ${report.auc.toFixed(4)}`,
        ...REPORTED_FARS.map((far) => `TAR at FAR ${far}: ${pct(report.tar_at_far[far])} (threshold ${report.threshold_at_far[far].toFixed(4)}; ${report.impostor_pairs} impostor pairs: below 3/${report.impostor_pairs} a rate cannot be shown, use --all-pairs)`),
        ...(calibrated ? REPORTED_FARS.map((far) => `calibrated on ${values.calibration}: FAR ${far} -> threshold ${calibrated[far]!.threshold.toFixed(4)}, TAR ${pct(calibrated[far]!.tar)}, measured FAR ${calibrated[far]!.far.toExponential(2)}`) : []),
        ...(fixed ? [describeFixed(fixed)] : []),
        `images without a face: ${report.failed_to_detect}; ${unreadableLine} (pairs failed: ${report.failed_pairs}; ${report.fallback})`,
        `models: ${models.detector}, ${models.embedder}; face: ${values.face}${values.refine ? ', refined landmarks' : ''}${values.flip ? ', flip-averaged' : ''}; ${report.seconds.toFixed(0)} s`,
      ].join('\n') + '\n',
    );
  }
  return 0;
}

/** The shares of images the quality curve discards, and the rates it reports. */
const QUALITY_DISCARDS = [0, 0.05, 0.1, 0.2] as const;
const QUALITY_CURVE_FARS = [1e-3, 1e-4] as const;

const ratesJson = (rates: readonly DiscardRates[]) => Object.fromEntries(rates.map((r) => [r.far.toExponential(0), { tar: r.tar, fnmr_at_start_threshold: r.fnmrAtStartThreshold }]));

function qualityCurveJson(point: DiscardPoint) {
  return {
    discarded: point.discarded,
    images_kept: point.imagesKept,
    min_quality_kept: point.minQualityKept,
    genuine_pairs: point.genuinePairs,
    impostor_pairs: point.impostorPairs,
    at_far: ratesJson(point.rates),
    random_discard_at_far: ratesJson(point.random),
  };
}

function qualityCurveLines(curve: readonly DiscardPoint[]): string[] {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  return [
    'error versus discard (lowest unified quality first; in brackets: the same share discarded at random):',
    ...curve.map((p) =>
      `  ${pct(p.discarded).padStart(5)} discarded (quality >= ${Number.isFinite(p.minQualityKept) ? p.minQualityKept.toFixed(0) : 'none'}, ${p.imagesKept} images): ` +
      p.rates.map((r, i) => `TAR at ${r.far.toExponential(0)} ${pct(r.tar)} [${pct(p.random[i]!.tar)}], FNMR at the start threshold ${pct(r.fnmrAtStartThreshold)} [${pct(p.random[i]!.fnmrAtStartThreshold)}]`).join('; '),
    ),
  ];
}

/** A DET curve (false non-match rate against false-match rate, both on log axes) of all-pairs scores. */
async function writeDetPlot(file: string, scores: AllPairsScores, label: string, title: string): Promise<void> {
  const points: { x: number; y: number }[] = [];
  // One point per decade step of a tenth: thresholds at the impostor scores that give each FAR.
  for (let exponent = -1; exponent >= -7; exponent -= 0.1) {
    const far = 10 ** exponent;
    if (far * scores.impostorPairs < 1) break;
    const rates = errorRates(scores, thresholdForFar(scores, far));
    points.push({ x: Math.max(rates.far, 1e-7), y: Math.max(rates.frr, 1e-4) });
  }
  await writePlot(file, [{ label, points }], { title, xLabel: 'false match rate', yLabel: 'false non-match rate', xLogFrom: 1e-7, xMax: 1e-1, yLogFrom: 1e-4 });
}
