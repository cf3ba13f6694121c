/**
 * `faceprint eval calibrate`: labelled face images through the detector, aligner and embedder
 * over gRPC, then thresholds for false-match rates 1e-3, 1e-4 and 1e-5 from every genuine and
 * impostor pair (see calibration.ts). `--record` writes them into the embedder model's manifest,
 * where the matcher reads them.
 */
import { parseArgs } from 'node:util';
import { ModelRegistry, registryRootFromEnv } from '@faceprint/model-registry';
import { calibrate, canShowRate, embedImages, impostorPairsOf, readIdentities, recordableThresholds, unsupportedRatesMessage } from '@faceprint/evaluation';
import { UsageError } from '../gateway/connection.js';
import { CALIBRATE_USAGE } from '../usage.js';

/** Runs the command; returns the process exit code. */
export async function evalCalibrate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      identities: { type: 'string' },
      root: { type: 'string' },
      dataset: { type: 'string' },
      face: { type: 'string', default: 'largest' },
      flip: { type: 'boolean', default: false },
      target: { type: 'string' },
      'detector-input-size': { type: 'string', default: '640' },
      record: { type: 'boolean', default: false },
      far: { type: 'string', default: '1e-3,1e-4,1e-5' },
      concurrency: { type: 'string', default: '4' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${CALIBRATE_USAGE}\n`);
    return 0;
  }
  if (!values.identities || (values.face !== 'largest' && values.face !== 'central')) {
    process.stderr.write(`${CALIBRATE_USAGE}\n`);
    return 2;
  }
  const fars = values.far.split(',').map((f) => Number(f.trim()));
  if (fars.some((f) => !(f > 0 && f <= 0.5))) throw new UsageError(`--far: false-match rates in (0, 0.5], comma-separated, got "${values.far}"`);
  const started = performance.now();
  const labelled = await readIdentities(values.identities, values.root);
  if (values.record) {
    // Before embedding anything: could even every image having a face show these rates?
    const most = impostorPairsOf(labelled.map((l) => l.identity));
    if (fars.every((f) => !canShowRate(most, f))) throw new UsageError(`nothing to record: ${most} impostor pairs at the most cannot show a false-match rate of ${fars.join(', ')} (that needs at least ${Math.ceil(3 / Math.max(...fars))}): calibrate on more identities, or for a higher --far`);
  }
  const { embeddings, models, embedder } = await embedImages(
    labelled.map((l) => l.path),
    { face: values.face, refine: false, flip: values.flip, target: values.target, detectorInputSize: values['detector-input-size'], concurrency: Number(values.concurrency) },
  );
  // Images without a face cannot be scored: they are left out and counted.
  const byIdentity = new Map<string, Float32Array[]>();
  for (const { identity, path } of labelled) {
    const embedding = embeddings.get(path);
    if (!embedding) continue;
    let group = byIdentity.get(identity);
    if (!group) byIdentity.set(identity, (group = []));
    group.push(embedding);
  }
  const result = calibrate(byIdentity, fars);
  const dataset = values.dataset ?? values.identities.split('/').pop()!;
  const report = {
    dataset,
    identities: result.identities,
    images: result.images,
    failed_to_detect: labelled.length - result.images,
    genuine_pairs: result.genuinePairs,
    impostor_pairs: result.impostorPairs,
    thresholds: result.points.map((p) => ({ far: p.far, threshold: p.threshold, tar: p.tar, measured_far: p.measuredFar, false_accepts: p.falseAccepts, far_upper_95: p.farUpper95, resolvable: p.resolvable })),
    // far / k for k = 2..10: what a decision over several templates compares at (fused-threshold.ts).
    per_comparison_thresholds: result.perComparisonPoints.map((p) => ({ far: p.far, threshold: p.threshold, tar: p.tar, false_accepts: p.falseAccepts, far_upper_95: p.farUpper95, resolvable: p.resolvable })),
    face_choice: values.face,
    flip_average: values.flip,
    models,
    recorded: false,
    recorded_fars: [] as number[],
    recorded_per_comparison_fars: [] as number[],
    unsupported_fars: [] as number[],
    seconds: 0,
  };
  if (values.record) {
    if (!embedder) throw new Error('no face was found in any image: nothing to record');
    const { thresholds, unsupported } = recordableThresholds(result, dataset);
    if (thresholds.length === 0) throw new UsageError(`nothing recorded: ${unsupportedRatesMessage(result, unsupported)}`);
    await new ModelRegistry(registryRootFromEnv(process.env)).recordCalibration(embedder.name, embedder.version, {
      thresholds,
      metrics: { calibration_genuine_pairs: result.genuinePairs, calibration_impostor_pairs: result.impostorPairs },
    });
    Object.assign(report, { recorded: true, recorded_fars: thresholds.filter((t) => !t.perComparison).map((t) => t.far), recorded_per_comparison_fars: thresholds.filter((t) => t.perComparison).map((t) => t.far), unsupported_fars: unsupported });
    if (unsupported.length > 0) process.stderr.write(`faceprint: not recorded: ${unsupportedRatesMessage(result, unsupported)}\n`);
  }
  report.seconds = (performance.now() - started) / 1000;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(
      [
        `${report.images} images of ${report.identities} identities (${report.failed_to_detect} without a face): ${report.genuine_pairs} genuine and ${report.impostor_pairs} impostor pairs`,
        ...report.thresholds.map(
          (t) =>
            `FAR ${t.far.toExponential(0)}: threshold ${t.threshold.toFixed(4)}, TAR ${(100 * t.tar).toFixed(2)}%, measured FAR ${t.measured_far.toExponential(2)} (${t.false_accepts} impostor pairs accepted; 95% upper bound ${t.far_upper_95.toExponential(2)}${t.resolvable ? '' : `: ${report.impostor_pairs} impostor pairs cannot show ${t.far.toExponential(0)}`})`,
        ),
        `per-comparison rates (a rate / k, for a decision over the best of k = 2..10 templates): ${report.per_comparison_thresholds.filter((t) => t.resolvable).length} of ${report.per_comparison_thresholds.length} can be shown${report.recorded ? ' and were recorded' : ''}`,
        `models: ${models.detector}, ${models.embedder}${report.recorded ? `; recorded in the manifest of ${models.embedder}` : ''}; ${report.seconds.toFixed(0)} s`,
      ].join('\n') + '\n',
    );
  }
  return 0;
}
