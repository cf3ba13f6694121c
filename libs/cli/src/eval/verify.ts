/**
 * `faceprint eval verify`: image pairs through the detector, aligner and embedder over gRPC,
 * scored by cosine similarity, reported with the LFW protocol (10-fold accuracy with the
 * threshold chosen on the other nine folds, AUC, TAR at FAR over all pairs).
 */
import { parseArgs } from 'node:util';
import { embedImages, readLfwPairs, readTsvPairs, REPORTED_FARS, scorePairs, tarAtFar, verificationMetrics, type Pair } from '@faceprint/evaluation';
import { writePlot } from './plot.js';
import { VERIFY_USAGE } from '../usage.js';

const FARS = REPORTED_FARS;

async function readPairs(file: string, root: string | undefined): Promise<Pair[]> {
  return file.endsWith('.tsv') ? readTsvPairs(file, root) : readLfwPairs(file, root);
}

/** Runs the command; returns the process exit code. */
export async function evalVerify(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pairs: { type: 'string' },
      tsv: { type: 'string' },
      root: { type: 'string' },
      face: { type: 'string', default: 'largest' },
      refine: { type: 'boolean', default: false },
      flip: { type: 'boolean', default: false },
      calibration: { type: 'string' },
      target: { type: 'string' },
      'detector-input-size': { type: 'string', default: '640' },
      limit: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      plot: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const file = values.pairs ?? values.tsv;
  if (!file || (values.face !== 'largest' && values.face !== 'central')) {
    process.stderr.write(`${VERIFY_USAGE}\n`);
    return 2;
  }
  let pairs = values.pairs ? await readLfwPairs(values.pairs, values.root) : await readTsvPairs(values.tsv!, values.root);
  if (values.limit) {
    const step = Math.max(1, Math.floor(pairs.length / Number(values.limit)));
    pairs = pairs.filter((_, i) => i % step === 0);
  }
  const calibrationPairs = values.calibration ? await readPairs(values.calibration, values.root) : [];
  const images = [...new Set([...pairs, ...calibrationPairs].flatMap((p) => [p.a, p.b]))];

  const started = performance.now();
  const { embeddings, models, startedServices } = await embedImages(images, {
    face: values.face,
    refine: values.refine,
    flip: values.flip,
    target: values.target,
    detectorInputSize: values['detector-input-size'],
    concurrency: Number(values.concurrency),
  });

  const scored = scorePairs(pairs, embeddings);
  const metrics = verificationMetrics(scored);
  const { curve } = metrics;
  const calibrated = calibrationPairs.length
    ? Object.fromEntries(
        FARS.map((far) => {
          const { threshold } = tarAtFar(scorePairs(calibrationPairs, embeddings), Number(far));
          const genuine = scored.filter((p) => p.same);
          const impostor = scored.filter((p) => !p.same);
          return [far, { threshold, tar: genuine.filter((p) => p.score > threshold).length / genuine.length, far: impostor.filter((p) => p.score > threshold).length / impostor.length }];
        }),
      )
    : undefined;
  const failedImages = [...embeddings.values()].filter((e) => !e).length;
  const report = {
    dataset: file,
    pairs: metrics.pairs,
    images: images.length,
    protocol: metrics.protocol,
    accuracy: metrics.accuracy,
    accuracy_std: metrics.accuracy_std,
    auc: metrics.auc,
    tar_at_far: metrics.tar_at_far,
    threshold_at_far: metrics.threshold_at_far,
    calibrated_on: values.calibration,
    calibrated,
    failed_to_detect: failedImages,
    failed_pairs: metrics.failed_pairs,
    fallback: 'none: a pair with an undetected face counts as a failed comparison',
    face_choice: values.face,
    refine_landmarks: values.refine,
    flip_average: values.flip,
    detector_input_size: startedServices ? Number(values['detector-input-size']) : 'as deployed',
    models,
    seconds: (performance.now() - started) / 1000,
  };
  if (values.plot) {
    await writePlot(values.plot, [{ label: `${models.embedder ?? 'embedder'}  AUC ${report.auc.toFixed(4)}`, points: curve.map((c) => ({ x: c.far, y: c.tar })) }], {
      title: `ROC: ${file.split('/').slice(-2).join('/')} (${scored.length} pairs)`,
      xLabel: 'false accept rate',
      yLabel: 'true accept rate',
      xLogFrom: 1e-4,
      xMax: 1,
    });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
    process.stdout.write(
      [
        `pairs ${report.pairs} (${report.images} images), ${report.protocol}`,
        `accuracy ${pct(report.accuracy)} ± ${pct(report.accuracy_std)}   AUC ${report.auc.toFixed(4)}`,
        ...FARS.map((far) => `TAR at FAR ${far}: ${pct(report.tar_at_far[far])} (threshold ${report.threshold_at_far[far].toFixed(4)})`),
        ...(calibrated ? FARS.map((far) => `calibrated on ${values.calibration}: FAR ${far} -> threshold ${calibrated[far]!.threshold.toFixed(4)}, TAR ${pct(calibrated[far]!.tar)}, measured FAR ${calibrated[far]!.far.toExponential(2)}`) : []),
        `images without a face: ${failedImages} (pairs failed: ${report.failed_pairs}; ${report.fallback})`,
        `models: ${models.detector}, ${models.embedder}; face: ${values.face}${values.refine ? ', refined landmarks' : ''}${values.flip ? ', flip-averaged' : ''}; ${report.seconds.toFixed(0)} s`,
      ].join('\n') + '\n',
    );
  }
  return 0;
}
