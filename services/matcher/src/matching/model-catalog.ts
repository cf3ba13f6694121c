/**
 * What the matcher needs to know about embedding models, read from the model registry: each
 * version's dimension, sha256 and calibrated thresholds. Manifests are cached briefly, so that a
 * calibration written into a manifest reaches the matcher within seconds without a restart.
 */
import { decisionRates, fusedThreshold, type FusedThreshold } from '@faceprint/contracts';
import type { ModelManifest } from '@faceprint/contracts/trainer';
import type { ModelRef } from '@faceprint/contracts/common';
import { ModelRegistry, RegistryError } from '@faceprint/model-registry';
import { FaceprintError } from '@faceprint/service-kit';

const CACHE_MS = 5_000;

/** The threshold a decision applies (fused-threshold.ts: per comparison, over the templates compared). */
export type Threshold = FusedThreshold;

/** Embedding-model manifests from one registry. */
export class ModelCatalog {
  readonly #registry: ModelRegistry;
  readonly #cache = new Map<string, { manifest: Promise<ModelManifest>; expires: number }>();

  constructor(registryRoot: string) {
    this.#registry = new ModelRegistry(registryRoot);
  }

  /**
   * The manifest of the version `ref` names. FAILED_PRECONDITION when the registry does not hold
   * it; INVALID_ARGUMENT (on `field`) when the ref's sha256 is not that version's.
   */
  async manifest(ref: ModelRef, field: string): Promise<ModelManifest> {
    const key = `${ref.name}@${ref.version}`;
    let cached = this.#cache.get(key);
    if (!cached || cached.expires < Date.now()) {
      cached = { manifest: this.#registry.readManifest(ref.name, ref.version), expires: Date.now() + CACHE_MS };
      this.#cache.set(key, cached);
    }
    let manifest: ModelManifest;
    try {
      manifest = await cached.manifest;
    } catch (error) {
      this.#cache.delete(key);
      if (error instanceof RegistryError && error.kind === 'NOT_FOUND') {
        throw FaceprintError.failedPrecondition('MODEL_VERSION', key, `model ${ref.name} v${ref.version} is not in the model registry`);
      }
      throw error;
    }
    if (ref.sha256 && ref.sha256 !== manifest.model?.sha256) {
      throw FaceprintError.invalidArgument([{ field: `${field}.sha256`, description: `is not the sha256 of ${ref.name} v${ref.version} in the model registry` }]);
    }
    if (manifest.embeddingDim === 0) {
      throw FaceprintError.failedPrecondition('MODEL_TASK', key, `model ${ref.name} v${ref.version} is not an embedding model`);
    }
    return manifest;
  }

  /** The version `current` points at for `name` (undefined: none, or no such model), read afresh. */
  currentVersion(name: string): Promise<number | undefined> {
    return this.#registry.currentVersion(name).catch(() => undefined);
  }

  /**
   * The threshold for a decision at `targetFar` on `manifest`'s model over the best of `templates`
   * templates (1 for one comparison): calibrated for `targetFar / k` per comparison, k of them
   * (fused-threshold.ts). FAILED_PRECONDITION when the model has no calibration for `targetFar`
   * (the message lists the rates it has).
   */
  threshold(manifest: ModelManifest, targetFar: number, templates = 1): Threshold {
    const fused = fusedThreshold(manifest.thresholds, targetFar, templates);
    if (fused) return fused;
    const ref = manifest.model!;
    const available = decisionRates(manifest.thresholds).map((t) => String(t.far)).join(', ');
    throw FaceprintError.failedPrecondition(
      'CALIBRATION',
      `${ref.name}@${ref.version}`,
      available
        ? `model ${ref.name} v${ref.version} has no threshold calibrated for a false-match rate of ${targetFar}; calibrated: ${available}`
        : `model ${ref.name} v${ref.version} has no calibrated thresholds; run its calibration (see docs/matcher.md) before verifying or identifying`,
    );
  }
}
