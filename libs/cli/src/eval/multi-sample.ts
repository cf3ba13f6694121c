/**
 * `faceprint eval multi-sample`: what enrolling several images per subject does to 1:1 verify.
 * Labelled images through the detector, aligner and embedder; each identity with more images than
 * the largest enrolment enrols its first N and is verified with the rest, against its own
 * enrolment and every other identity's, with each way of fusing a subject's templates
 * (multi-sample.ts in @faceprint/evaluation). Reports TAR at FAR 1e-3 and 1e-4 per N and fusion,
 * and with `--model-far`/`--threshold` what the model's single-comparison threshold really does.
 */
import { parseArgs } from 'node:util';
import { fusedThreshold } from '@faceprint/contracts';
import { embedImages, FUSIONS, multiSampleScores, operatingPoint, ratesAt, readIdentities, usableIdentities } from '@faceprint/evaluation';
import { numberFlag, UsageError } from '../gateway/connection.js';
import { MULTI_SAMPLE_USAGE } from '../usage.js';
import { fixedThresholdReport, recordedThreshold, servedCalibration } from './fixed-threshold.js';

const FARS = [1e-3, 1e-4] as const;

/** Runs the command; returns the process exit code. */
export async function evalMultiSample(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      identities: { type: 'string' },
      root: { type: 'string' },
      face: { type: 'string', default: 'largest' },
      enrolled: { type: 'string', default: '1,3,5' },
      threshold: { type: 'string' },
      'model-far': { type: 'string' },
      target: { type: 'string' },
      'detector-input-size': { type: 'string', default: '640' },
      concurrency: { type: 'string', default: '4' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${MULTI_SAMPLE_USAGE}\n`);
    return 0;
  }
  if (!values.identities) throw new UsageError(`name the images: --identities FILE\n${MULTI_SAMPLE_USAGE}`);
  if (values.face !== 'largest' && values.face !== 'central') throw new UsageError(`--face: largest or central, got "${values.face}"`);
  if (values.threshold !== undefined && values['model-far'] !== undefined) throw new UsageError('give --threshold or --model-far, not both');
  const enrolments = values.enrolled.split(',').map((n) => Number(n.trim()));
  if (enrolments.some((n) => !Number.isInteger(n) || n < 1 || n > 50)) throw new UsageError(`--enrolled: whole numbers of images from 1 to 50, comma-separated, got "${values.enrolled}"`);
  const fixedThreshold = numberFlag(values.threshold, '--threshold', (t) => t >= -1 && t <= 1, 'a cosine threshold in [-1, 1]');
  const modelFar = numberFlag(values['model-far'], '--model-far', (f) => f > 0 && f < 1, 'a false-match rate the embedder is calibrated for, e.g. 1e-4');
  const concurrency = numberFlag(values.concurrency, '--concurrency', (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'an integer from 1 to 64')!;

  const largest = Math.max(...enrolments);
  const labelled = await readIdentities(values.identities, values.root);
  const byIdentity = new Map<string, string[]>();
  for (const { identity, path } of labelled) byIdentity.set(identity, [...(byIdentity.get(identity) ?? []), path]);
  const used = [...byIdentity].filter(([, paths]) => paths.length > largest);
  if (used.length < 2) throw new UsageError(`--enrolled ${largest} needs identities with more than ${largest} images, at least two of them: ${values.identities} has ${used.length}`);
  const started = performance.now();
  const { embeddings, models, embedder } = await embedImages(used.flatMap(([, paths]) => paths), {
    face: values.face,
    refine: false,
    flip: false,
    target: values.target,
    detectorInputSize: values['detector-input-size'],
    concurrency,
  });
  const calibration = modelFar !== undefined ? await servedCalibration(embedder) : undefined;
  const threshold = calibration ? recordedThreshold(calibration, embedder!, modelFar!) : fixedThreshold;
  const images = new Map(used.map(([identity, paths]) => [identity, paths.map((path) => embeddings.get(path))]));
  // With --model-far, the matcher's own rule too: the best of k templates, each at the threshold of far / k.
  const served = calibration
    ? enrolments.map((enrolled) => {
        const fused = fusedThreshold(calibration, modelFar!, enrolled);
        if (!fused) throw new UsageError(`--model-far: ${modelFar} is not a rate ${models.embedder} decides at`);
        const rates = ratesAt(multiSampleScores(images, fused.comparisons, largest, 'max'), fused.threshold);
        return { enrolled, templates_compared: fused.comparisons, per_comparison_far: fused.perComparisonFar, ...fixedThresholdReport(rates) };
      })
    : undefined;
  const results = enrolments.flatMap((enrolled) =>
    FUSIONS.map((fusion) => {
      const scores = multiSampleScores(images, enrolled, largest, fusion);
      const points = FARS.map((far) => operatingPoint(scores, far));
      return {
        enrolled,
        fusion,
        genuine_pairs: scores.genuinePairs,
        impostor_pairs: scores.impostorPairs,
        tar_at_far: Object.fromEntries(points.map((p) => [p.targetFar.toExponential(0), p.tar])),
        far_points: points.map((p) => ({ far: p.targetFar, threshold: p.threshold, tar: p.tar, false_matches: p.falseMatches, far_upper_95: p.farUpper95, resolvable: p.resolvable })),
        ...(threshold !== undefined ? { fixed_threshold: fixedThresholdReport(ratesAt(scores, threshold)) } : {}),
      };
    }),
  );
  const report = {
    dataset: values.identities,
    protocol: `each identity with more than ${largest} images enrols its first N and is verified with the rest (the same probes for every N), against its own enrolment and every other's`,
    identities: usableIdentities(images, largest).length,
    probes: results[0]!.genuine_pairs,
    failed_to_detect: [...embeddings.values()].filter((e) => !e).length,
    face_choice: values.face,
    models,
    results,
    ...(served ? { as_served: served } : {}),
    seconds: (performance.now() - started) / 1000,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return 0;
  }
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  process.stdout.write(
    [
      `${report.identities} identities, ${report.probes} probes, ${results[0]!.impostor_pairs} impostor comparisons per enrolment size and fusion`,
      ...results.map((r) => {
        const fixed = r.fixed_threshold ? `; at ${r.fixed_threshold.threshold.toFixed(4)}: FAR ${r.fixed_threshold.far.toExponential(2)} (${r.fixed_threshold.false_matches}; bound ${r.fixed_threshold.far_upper_95.toExponential(2)}), FRR ${pct(r.fixed_threshold.frr)}` : '';
        return `  ${String(r.enrolled).padStart(2)} enrolled, ${r.fusion.padEnd(13)} TAR at 1e-3 ${pct(r.tar_at_far['1e-3']!)}, at 1e-4 ${pct(r.tar_at_far['1e-4']!)}${r.far_points[1]!.resolvable ? '' : ' (too few impostor comparisons for 1e-4)'}${fixed}`;
      }),
      ...(served
        ? [`as the matcher decides at ${modelFar} (the best of k templates, each at the threshold for ${modelFar}/k):`, ...served.map((r) => `  ${String(r.enrolled).padStart(2)} enrolled: ${r.templates_compared} compared at ${r.threshold.toFixed(4)}: FAR ${r.far.toExponential(2)} (${r.false_matches}; bound ${r.far_upper_95.toExponential(2)}), FRR ${pct(r.frr)}`)]
        : []),
      `images without a face: ${report.failed_to_detect}; models: ${models.detector}, ${models.embedder}; ${report.seconds.toFixed(0)} s`,
    ].join('\n') + '\n',
  );
  return 0;
}
