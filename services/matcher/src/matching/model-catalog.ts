/**
 * What the matcher needs to know about embedding models, read from the model registry: each
 * version's dimension, sha256 and calibrated thresholds. Manifests are cached briefly, so that a
 * calibration written into a manifest reaches the matcher within seconds without a restart.
 */
import type { ModelManifest } from '@faceprint/contracts/trainer';
import type { ModelRef } from '@faceprint/contracts/common';
import { ModelRegistry, RegistryError } from '@faceprint/model-registry';
import { FaceprintError } from '@faceprint/service-kit';

const CACHE_MS = 5_000;

/** Two false-match rates name the same calibration when they agree to six significant digits. */
const sameRate = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b));

/** The threshold a decision applies. */
export interface Threshold {
  readonly threshold: number;
  readonly targetFar: number;
  /** The calibration's 95% upper bound of the false-match rate at the threshold (0: not recorded). */
  readonly farUpper95: number;
  /** How many impostor comparisons the calibration scored (0: not recorded). */
  readonly impostorPairs: bigint;
}

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
   * The threshold calibrated for `targetFar` on `manifest`'s model. FAILED_PRECONDITION when the
   * model has no calibration for it (the message lists the rates it has).
   */
  threshold(manifest: ModelManifest, targetFar: number): Threshold {
    const calibrated = manifest.thresholds.find((t) => sameRate(t.far, targetFar));
    if (calibrated) return { threshold: calibrated.threshold, targetFar: calibrated.far, farUpper95: calibrated.farUpper95, impostorPairs: calibrated.impostorPairs };
    const ref = manifest.model!;
    const available = manifest.thresholds.map((t) => String(t.far)).join(', ');
    throw FaceprintError.failedPrecondition(
      'CALIBRATION',
      `${ref.name}@${ref.version}`,
      available
        ? `model ${ref.name} v${ref.version} has no threshold calibrated for a false-match rate of ${targetFar}; calibrated: ${available}`
        : `model ${ref.name} v${ref.version} has no calibrated thresholds; run its calibration (see docs/matcher.md) before verifying or identifying`,
    );
  }
}
