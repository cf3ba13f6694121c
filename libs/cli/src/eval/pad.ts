/**
 * `faceprint eval pad`: a presentation-attack detection model measured on labelled frames, through
 * the detector, aligner and liveness service as the gateway uses them (each frame's largest face,
 * aligned to the model's template, scored alone; a video's score is the mean of its frames', as
 * the service fuses a burst). Reports, per frame and per video: APCER and BPCER at the model's own
 * threshold (FACEPRINT_LIVENESS_TARGET_BPCER's operating point), APCER per attack type and per
 * support, APCER at BPCER 1% and 5% and the equal error rate on this data; `--plot` a DET curve.
 */
import { parseArgs } from 'node:util';
import type { ModelRef } from '@faceprint/contracts/common';
import { LivenessService } from '@faceprint/contracts/liveness';
import type { PadOperatingPoint } from '@faceprint/contracts/trainer';
import { alignLargestFaces, byVideo, padDetCurve, padEqualErrorRate, padRatesAt, readPadFolders, readPadFrames, thresholdForBpcer, type PadFrame, type ScoredPresentation } from '@faceprint/evaluation';
import { acquireServices, forEachConcurrently } from '@faceprint/mesh';
import { createClient } from '@faceprint/service-kit';
import { numberFlag, UsageError } from '../gateway/connection.js';
import { PAD_USAGE } from '../usage.js';

const BPCERS = ['0.01', '0.05'] as const;

/** The figures of one way of scoring (per frame, per video). */
function figures(scored: readonly (ScoredPresentation & { support: string })[], threshold: number) {
  const at = padRatesAt(scored, threshold);
  const bySupport = padRatesAt(
    scored.map((s) => ({ ...s, attackType: s.bonaFide || !s.support ? s.attackType : `${s.attackType} ${s.support}` })),
    threshold,
  ).apcerByAttackType;
  return {
    bona_fide: at.bonaFide,
    attacks: at.attacks,
    apcer: at.apcer,
    bpcer: at.bpcer,
    apcer_by_attack_type: at.apcerByAttackType,
    apcer_by_attack_type_and_support: bySupport,
    apcer_at_bpcer: Object.fromEntries(BPCERS.map((b) => [b, thresholdForBpcer(scored, Number(b)).apcer])),
    eer: padEqualErrorRate(scored),
  };
}

/** Runs the command; returns the process exit code. */
export async function evalPad(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      manifest: { type: 'string' },
      split: { type: 'string' },
      root: { type: 'string' },
      real: { type: 'string' },
      attack: { type: 'string' },
      model: { type: 'string' },
      target: { type: 'string' },
      plot: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${PAD_USAGE}\n`);
    return 0;
  }
  if (!values.manifest === !(values.real && values.attack)) throw new UsageError(`name the frames: --manifest FRAMES.tsv, or --real DIR and --attack DIR\n${PAD_USAGE}`);
  if (values.target && values.model) throw new UsageError('--model chooses the model of services started for the run; with --target the deployment serves its own');
  const concurrency = numberFlag(values.concurrency, '--concurrency', (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'an integer from 1 to 64')!;
  let frames: PadFrame[] = values.manifest ? await readPadFrames(values.manifest, values.root) : await readPadFolders(values.real!, values.attack!);
  if (values.split) frames = frames.filter((f) => f.split === values.split);
  if (!frames.some((f) => f.bonaFide) || !frames.some((f) => !f.bonaFide)) throw new UsageError(`the frames${values.split ? ` of split "${values.split}"` : ''} must hold bona fide and attack frames (got ${frames.filter((f) => f.bonaFide).length} and ${frames.filter((f) => !f.bonaFide).length})`);

  const started = performance.now();
  const services = await acquireServices(['detector', 'aligner', 'liveness'], values.target, values.model ? { FACEPRINT_LIVENESS_MODEL: values.model } : {});
  const liveness = createClient(LivenessService, services.addresses.liveness!);
  const scores = new Array<number | undefined>(frames.length);
  let model: ModelRef | undefined;
  let operatingPoint: PadOperatingPoint | undefined;
  try {
    const status = await liveness.modelStatus({});
    if (!status.serving) throw new UsageError(`the liveness service serves no PAD model${status.error ? ` (${status.error})` : ''}: train one (faceprint models pad-train) and promote it, or name one with --model NAME[@VERSION]`);
    const serving = status.serving;
    ({ serving: model, operatingPoint } = status);
    const crops = await alignLargestFaces({ detector: services.addresses.detector!, aligner: services.addresses.aligner! }, frames.map((f) => f.path), { model: serving }, {
      concurrency,
      onProgress: (done, total) => done % 500 === 0 && process.stderr.write(`  ${done}/${total} frames\n`),
    });
    await forEachConcurrently(crops, concurrency, async (crop, i) => {
      if (!crop) return;
      const { assessment } = await liveness.assess({ frames: [crop], model: serving });
      scores[i] = assessment!.score;
    });
  } finally {
    liveness.close();
    await services.stop();
  }
  const scored = frames.flatMap((f, i) => (scores[i] === undefined ? [] : [{ score: scores[i], bonaFide: f.bonaFide, attackType: f.attackType, support: f.support, video: f.video }]));
  const perVideo = byVideo(scored);
  const threshold = operatingPoint!.threshold;
  const report = {
    model: `${model!.name} v${model!.version}`,
    model_sha256: model!.sha256,
    threshold,
    target_bpcer: operatingPoint!.targetBpcer,
    frames: frames.length,
    frames_without_face: frames.length - scored.length,
    ...figures(scored, threshold),
    per_video: figures(perVideo, threshold),
    seconds: (performance.now() - started) / 1000,
  };
  if (values.plot) {
    const { writePlot } = await import('./plot.js');
    const curve = (list: readonly ScoredPresentation[]) => padDetCurve(list).map((p) => ({ x: Math.max(p.bpcer, 1e-3), y: Math.max(p.apcer, 1e-3) }));
    await writePlot(values.plot, [{ label: 'per frame', points: curve(scored) }, { label: 'per video', points: curve(perVideo) }], {
      title: `PAD DET: ${report.model} (${report.bona_fide} bona fide, ${report.attacks} attack frames)`,
      xLabel: 'BPCER (bona fide rejected)',
      yLabel: 'APCER (attacks accepted)',
      xLogFrom: 1e-3,
      xMax: 1,
      yLogFrom: 1e-3,
    });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    const lines = (label: string, f: ReturnType<typeof figures>) => [
      `${label}: ${f.bona_fide} bona fide, ${f.attacks} attacks | at the model's threshold APCER ${pct(f.apcer)}, BPCER ${pct(f.bpcer)} | APCER at BPCER 1% ${pct(f.apcer_at_bpcer['0.01']!)}, 5% ${pct(f.apcer_at_bpcer['0.05']!)} | EER ${pct(f.eer)}`,
      `  APCER by attack type: ${Object.entries(f.apcer_by_attack_type_and_support).map(([t, a]) => `${t} ${pct(a)}`).join(', ')}`,
    ];
    process.stdout.write(
      [`${report.model}, threshold ${threshold.toFixed(4)} (BPCER ${report.target_bpcer} on its development data); ${report.frames_without_face} of ${report.frames} frames without a face`, ...lines('per frame', report), ...lines('per video', report.per_video)].join('\n') + '\n',
    );
  }
  return 0;
}
