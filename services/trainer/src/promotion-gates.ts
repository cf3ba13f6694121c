/**
 * The promotion gates of an embedding model (docs/models.md): a candidate becomes `current` only
 * if it beats the current version by more than a margin of TAR at FAR 1e-3 on every dataset both
 * were evaluated on (the design's rule: more than 2 points), and was evaluated on at least one.
 * A quantised version must also have passed its parity check (quantize-job.ts); a quantised copy
 * of the current version is not asked to beat it (it is the same network, smaller and faster):
 * parity stands in for the margin. Detectors and first versions pass on their integrity alone.
 */
import { ModelTask, type GateResult, type ModelManifest } from '@faceprint/contracts/trainer';
import { create } from '@bufbuild/protobuf';
import { GateResultSchema } from '@faceprint/contracts/trainer';
import { metricKey } from './jobs/evaluate-job.js';

/** The metric the quantisation job records its verdict in (1 passed, 0 failed). */
const QUANTIZATION_PASSED = 'quantization/passed';

/** The gate's operating point. */
const GATE_METRIC = 'tar_at_far_1e-3';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The gates for promoting `candidate` over `current` (undefined: no current version yet). */
export function promotionGates(candidate: ModelManifest, current: ModelManifest | undefined, margin: number): GateResult[] {
  const gates = [create(GateResultSchema, { name: 'sha256', passed: true, detail: 'the model file matches its manifest' })];
  if (candidate.task !== ModelTask.EMBEDDER) return gates;
  const parity = candidate.metrics[QUANTIZATION_PASSED];
  if (parity !== undefined) {
    const m = candidate.metrics;
    gates.push(
      create(GateResultSchema, {
        name: 'int8_parity',
        passed: parity === 1,
        detail: `INT8 against its FP32 parent v${candidate.lineage?.parent?.version}: mean cosine ${m['quantization/cosine_mean']?.toFixed(4)}, accuracy drop ${(100 * (m['quantization/accuracy_drop'] ?? NaN)).toFixed(2)} points (${parity === 1 ? 'within' : 'outside'} the gate: cosine >= ${m['quantization/min_cosine']}, drop <= ${(100 * (m['quantization/max_accuracy_drop'] ?? NaN)).toFixed(2)} points)`,
      }),
    );
  }
  if (!current || current.model?.version === candidate.model?.version) return gates;
  if (parity !== undefined && candidate.lineage?.parent?.version === current.model?.version) return gates;
  const suffix = `/${GATE_METRIC}`;
  const datasets = Object.keys(candidate.metrics)
    .filter((key) => key.endsWith(suffix) && key in current.metrics)
    .map((key) => key.slice(0, -suffix.length))
    .sort();
  const name = (m: ModelManifest) => `v${m.model?.version}`;
  if (datasets.length === 0) {
    gates.push(
      create(GateResultSchema, {
        name: 'evaluated_on_a_common_dataset',
        passed: false,
        detail: `${name(candidate)} and the current ${name(current)} have no evaluation on a common dataset: evaluate both first (faceprint models evaluate)`,
      }),
    );
    return gates;
  }
  for (const dataset of datasets) {
    const mine = candidate.metrics[metricKey(dataset, GATE_METRIC)]!;
    const theirs = current.metrics[metricKey(dataset, GATE_METRIC)]!;
    const gain = mine - theirs;
    gates.push(
      create(GateResultSchema, {
        name: `${GATE_METRIC}_margin:${dataset}`,
        passed: gain > margin,
        detail: `${dataset}: TAR at FAR 1e-3 ${pct(mine)} against ${pct(theirs)} for the current ${name(current)}: ${gain >= 0 ? '+' : ''}${(100 * gain).toFixed(2)} points; more than ${(100 * margin).toFixed(2)} required`,
      }),
    );
  }
  return gates;
}
