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
  const { manifest, created } = present ? { manifest: present, created: false } : await buildAndPublish(registry, importer, context);
  const version = manifest.model!.version;
  const promoted = options.promoteIfFirst && (await registry.currentVersion(importer.name)) === undefined;
  if (promoted) await registry.promote(importer.name, version);
  return { manifest, created, promoted };
}

async function buildAndPublish(registry: ModelRegistry, importer: Importer, context: ImportContext) {
  const built = await importer.build(context);
  await validateWithOnnxRuntime(importer.name, built.model, built.probeShape, built.manifest.outputs ?? []);
  return registry.publish(built);
}
