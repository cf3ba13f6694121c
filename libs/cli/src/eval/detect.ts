/**
 * `faceprint eval detect`: FDDB-format annotations through the detector service. A detection
 * matches a face when its IoU with the ellipse's bounding box is at least 0.5, each face once
 * (best-scoring detections first); the report is the discrete ROC, recall at 0.1 false positives
 * per image, the maximum recall and the average precision.
 */
import { access, readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DetectorService } from '@faceprint/contracts/detector';
import { createClient } from '@faceprint/service-kit/clients';
import { acquireServices, forEachConcurrently } from '@faceprint/mesh';
import { readFddb, type FddbImage, detectionMetrics, type ScoredDetection } from '@faceprint/evaluation';
import { writePlot } from './plot.js';
import { DETECT_USAGE } from '../usage.js';

type Box = { x: number; y: number; width: number; height: number };

function iou(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  const intersection = Math.max(0, w) * Math.max(0, h);
  return intersection / (a.width * a.height + b.width * b.height - intersection);
}

/** Greedy matching, best score first: each annotated face is matched at most once. */
function match(image: FddbImage, detections: readonly { box: Box; score: number }[]): ScoredDetection[] {
  const taken = new Set<number>();
  return [...detections]
    .sort((a, b) => b.score - a.score)
    .map((d) => {
      let best = -1;
      let bestIou = 0.5;
      image.faces.forEach((face, i) => {
        const overlap = iou(d.box, face.box);
        if (!taken.has(i) && overlap >= bestIou) {
          best = i;
          bestIou = overlap;
        }
      });
      if (best >= 0) taken.add(best);
      return { score: d.score, truePositive: best >= 0 };
    });
}

/** Runs the command; returns the process exit code. */
export async function evalDetect(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      fddb: { type: 'string', multiple: true },
      root: { type: 'string' },
      'input-size': { type: 'string', default: '640' },
      target: { type: 'string' },
      concurrency: { type: 'string', default: '2' },
      plot: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${DETECT_USAGE}\n`);
    return 0;
  }
  const files = [...(values.fddb ?? []), ...positionals];
  if (files.length === 0 || !values.root) {
    process.stderr.write(`${DETECT_USAGE}\n`);
    return 2;
  }
  const annotated = await readFddb(files, values.root);
  const present: FddbImage[] = [];
  for (const image of annotated) {
    if (await access(image.path).then(() => true, () => false)) present.push(image);
  }
  const started = performance.now();
  const services = await acquireServices(['detector'], values.target, { FACEPRINT_DETECTOR_INPUT_SIZE: values['input-size'] });
  const detector = createClient(DetectorService, services.addresses.detector!);
  const detections: ScoredDetection[] = [];
  let model = '';
  try {
    await forEachConcurrently(present, Number(values.concurrency), async (image) => {
      const response = await detector.detect({ image: { content: await readFile(image.path) }, options: { scoreThreshold: 0.05 } });
      model = `${response.model?.name} v${response.model?.version}`;
      detections.push(...match(image, response.faces.map((f) => ({ box: f.box!, score: f.score }))));
    });
  } finally {
    detector.close();
    await services.stop();
  }
  const faces = present.reduce((n, image) => n + image.faces.length, 0);
  const metrics = detectionMetrics(detections, faces, present.length, 0.1);
  const report = {
    annotations: files,
    images: present.length,
    images_missing: annotated.length - present.length,
    faces,
    detections: detections.length,
    recall_at_fp: { '0.1': metrics.recallAtFp },
    max_recall: metrics.maxRecall,
    ap: metrics.ap,
    matching: 'IoU >= 0.5 with the ellipse bounding box, each face once, best score first',
    input_size: services.started ? Number(values['input-size']) : 'as deployed',
    model,
    seconds: (performance.now() - started) / 1000,
  };
  if (values.plot) {
    await writePlot(values.plot, [{ label: `${model} @ ${report.input_size}  AP ${metrics.ap.toFixed(3)}`, points: metrics.curve.map((c) => ({ x: c.fpPerImage, y: c.recall })) }], {
      title: `Discrete ROC: ${present.length} images, ${faces} faces`,
      xLabel: 'false positives per image',
      yLabel: 'recall',
      xMax: 1,
    });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(
      [
        `images ${report.images} (missing on disk: ${report.images_missing}), faces ${faces}, detections ${detections.length}`,
        `recall at 0.1 FP/image ${(100 * metrics.recallAtFp).toFixed(1)}%   max recall ${(100 * metrics.maxRecall).toFixed(1)}%   AP ${metrics.ap.toFixed(3)}`,
        `model ${model}, input size ${report.input_size}; ${report.seconds.toFixed(0)} s`,
      ].join('\n') + '\n',
    );
  }
  return 0;
}
