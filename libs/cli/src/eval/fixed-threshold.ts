/** A threshold decided in advance, as the eval commands take it (`--threshold`, `--model-far`) and report what it does. */
import { decisionRates, sameRate } from '@faceprint/contracts';
import type { ModelRef } from '@faceprint/contracts/common';
import type { CalibratedThreshold } from '@faceprint/contracts/trainer';
import type { ThresholdRates } from '@faceprint/evaluation';
import { ModelRegistry, registryRootFromEnv } from '@faceprint/model-registry';
import { UsageError } from '../gateway/connection.js';

/** The calibrated thresholds of the embedder that served, from the local registry's manifest of exactly that file. */
export async function servedCalibration(embedder: ModelRef | undefined): Promise<CalibratedThreshold[]> {
  if (!embedder) throw new UsageError('--model-far: no face was embedded, so the embedder that served is unknown');
  const manifest = await new ModelRegistry(registryRootFromEnv(process.env)).readManifest(embedder.name, embedder.version);
  if (manifest.model?.sha256 !== embedder.sha256) throw new UsageError(`--model-far: the local registry's ${embedder.name} v${embedder.version} is not the file that served (another sha256): point FACEPRINT_MODEL_REGISTRY at the deployed registry`);
  return manifest.thresholds;
}

/** The threshold `thresholds` (the calibration of `embedder`) record for `far` (`--model-far`), by the matcher's rule for naming a rate. */
export function recordedThreshold(thresholds: readonly CalibratedThreshold[], embedder: ModelRef, far: number): number {
  const recorded = thresholds.find((t) => sameRate(t.far, far));
  if (!recorded) throw new UsageError(`--model-far: ${embedder.name} v${embedder.version} records no threshold for ${far} (it records ${decisionRates(thresholds).map((t) => t.far).join(', ') || 'none'})`);
  return recorded.threshold;
}

/** The threshold the local registry's manifest of the embedder that served records for `far`. */
export async function modelThreshold(embedder: ModelRef | undefined, far: number): Promise<number> {
  return recordedThreshold(await servedCalibration(embedder), embedder!, far);
}

/** The JSON form of a fixed threshold's rates. */
export const fixedThresholdReport = (rates: ThresholdRates) => ({
  threshold: rates.threshold,
  far: rates.far,
  frr: rates.frr,
  impostors: rates.impostors,
  genuine: rates.genuine,
  false_matches: rates.falseMatches,
  false_non_matches: rates.falseNonMatches,
  far_upper_95: rates.farUpper95,
});
