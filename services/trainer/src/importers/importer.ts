/**
 * Importers turn a model's public source into a registry version: fetch or convert, check that
 * ONNX Runtime loads and runs the result, then publish (idempotently) and, for a model that has
 * no current version yet, promote it.
 */
import type { ModelRegistry, VersionDraft } from '@faceprint/model-registry';
import type { ModelManifest } from '@faceprint/contracts/trainer';
import { validateWithOnnxRuntime } from './validate.js';

/** Where importers may read sources from. */
export interface ImportContext {
  /** A local mirror of URL-sourced model files (laid out like shared/models); no download when set. */
  readonly mirrorDir: string | undefined;
}

/** A model ready to publish, with the input shape to probe it with. */
export interface BuiltModel extends VersionDraft {
  /** A concrete input shape for the validation run (dynamic dimensions filled in). */
  readonly probeShape: readonly number[];
}

/** Builds one model from its source. */
export interface Importer {
  /** The importer name, which is also the registry model name. */
  readonly name: string;
  /** One line about what it imports. */
  readonly summary: string;
  /**
   * The sha256 of the model file the importer will produce, when known in advance (a pinned
   * download imported unchanged): a registry that already holds it needs no fetch at all.
   */
  readonly pinnedSha256?: string;
  /** Fetches or converts the model. Throws an Error naming what failed. */
  build(context: ImportContext): Promise<BuiltModel>;
  /**
   * For embedders: thresholds measured by `faceprint eval calibrate` on this exact model file,
   * recorded in the manifest of a version that has none (a user's machine lacks the evaluation
   * data to measure them).
   */
  readonly calibration?: ShippedCalibration;
}

/** A calibration measured once and shipped with an importer. */
export interface ShippedCalibration {
  /** The model file it was measured on. */
  readonly sha256: string;
  /** The thresholds, one per false-match rate. */
  readonly thresholds: readonly {
    readonly far: number;
    readonly threshold: number;
    readonly tar: number;
    readonly dataset: string;
    readonly impostorPairs: bigint;
    readonly falseMatches: bigint;
    readonly farUpper95: number;
    /** A rate a decision over several templates holds each to (fused-threshold.ts), not one to decide at. */
    readonly perComparison: boolean;
  }[];
  /** What the measurement counted, e.g. impostor pairs. */
  readonly metrics: Readonly<Record<string, number>>;
}

/** The outcome of an import. */
export interface ImportResult {
  /** The manifest of the imported (or already present) version. */
  readonly manifest: ModelManifest;
  /** False when identical bytes were already stored. */
  readonly created: boolean;
  /** True when this import made the version current. */
  readonly promoted: boolean;
}

/** Runs an importer into a registry. Nothing reaches the registry unless ONNX Runtime runs it. */
export async function runImport(registry: ModelRegistry, importer: Importer, context: ImportContext, options: { promoteIfFirst: boolean }): Promise<ImportResult> {
  const present = importer.pinnedSha256 ? await registry.findBySha256(importer.name, importer.pinnedSha256) : undefined;
  const imported = present ? { manifest: present, created: false } : await buildAndPublish(registry, importer, context);
  const created = imported.created;
  let manifest = imported.manifest;
  const version = manifest.model!.version;
  const calibration = importer.calibration;
  if (calibration && calibration.sha256 === manifest.model!.sha256 && manifest.thresholds.length === 0) {
    manifest = await registry.recordCalibration(importer.name, version, { thresholds: [...calibration.thresholds], metrics: { ...calibration.metrics } });
  }
  const promoted = options.promoteIfFirst && (await registry.currentVersion(importer.name)) === undefined;
  if (promoted) await registry.promote(importer.name, version);
  return { manifest, created, promoted };
}

async function buildAndPublish(registry: ModelRegistry, importer: Importer, context: ImportContext) {
  const built = await importer.build(context);
  await validateWithOnnxRuntime(importer.name, built.model, built.probeShape, built.manifest.outputs ?? []);
  return registry.publish(built);
}
