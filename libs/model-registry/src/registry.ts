/**
 * The model registry: a directory laid out like Triton's model repository.
 *
 *   <root>/<model-name>/<version>/model.onnx      the model file (immutable)
 *   <root>/<model-name>/<version>/manifest.json   faceprint.trainer.v1.ModelManifest as protobuf JSON
 *   <root>/<model-name>/current                   the promoted version number
 *
 * Versions are published by writing into a temporary directory and renaming it into place, and
 * `current` is replaced by a rename, so a reader never sees half of either. Loading a model
 * verifies its sha256 against the manifest. The root is local disk, or a shared volume in
 * Kubernetes (read-write for the trainer, read-only for the services).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { create, fromJsonString, toJsonString, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { ModelRefSchema } from '@faceprint/contracts/common';
import { CalibratedThresholdSchema, ModelManifestSchema, ModelTask, type ModelManifest } from '@faceprint/contracts/trainer';

/** The model file name inside a version directory. */
export const MODEL_FILE = 'model.onnx';
/** The manifest file name inside a version directory. */
export const MANIFEST_FILE = 'manifest.json';
/** The pointer file of a model. */
export const CURRENT_FILE = 'current';

/** Why a registry operation failed. */
export type RegistryErrorKind = 'NOT_FOUND' | 'INTEGRITY' | 'INVALID';

/** A registry failure, with a message naming the model, version and file concerned. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    /** What kind of failure. */
    readonly kind: RegistryErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One model name in the registry. */
export interface RegistryModelSummary {
  /** The model name. */
  readonly name: string;
  /** The task of its newest version. */
  readonly task: ModelTask;
  /** The promoted version, if any. */
  readonly currentVersion: number | undefined;
  /** Every version, ascending. */
  readonly versions: readonly number[];
}

/** A loaded, verified model version. */
export interface LoadedModel {
  /** Its manifest. */
  readonly manifest: ModelManifest;
  /** The model file's bytes (sha256 verified). */
  readonly bytes: Uint8Array;
  /** The version directory. */
  readonly directory: string;
}

/** What a new version is made of; the registry fills in the manifest's model ref and creation time. */
export interface VersionDraft {
  /** The model name. */
  readonly name: string;
  /** The manifest; its `model` and `createTime` are set by the registry. */
  readonly manifest: MessageInitShape<typeof ModelManifestSchema>;
  /** The model file. */
  readonly model: Uint8Array;
}

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** The lower-case hex sha256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkName(name: string): void {
  if (!MODEL_NAME.test(name)) {
    throw new RegistryError('INVALID', `invalid model name "${name}": use 1-64 of [a-z0-9._-], starting with a letter or digit`);
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Writes a file and flushes it to disk before closing, so a rename after it is durable. */
async function writeDurably(path: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `directory/file` atomically: the data goes to a hidden file beside it, flushed, then
 * renamed over the old one, so a reader sees the old content or the new, never a mix.
 */
async function replaceDurably(directory: string, file: string, data: string): Promise<void> {
  const staging = join(directory, `.${file}-${randomBytes(6).toString('hex')}`);
  try {
    await writeDurably(staging, data);
    await rename(staging, join(directory, file));
  } catch (error) {
    await rm(staging, { force: true });
    throw error;
  }
}

/** Reads and writes one registry root. */
export class ModelRegistry {
  /** The registry root directory. */
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /** Every model name with its versions and current pointer, ordered by name. */
  async listModels(): Promise<RegistryModelSummary[]> {
    const entries = await readdir(this.root, { withFileTypes: true }).catch((error: unknown) => {
      if (isMissing(error)) return [];
      throw error;
    });
    const names = entries.filter((e) => e.isDirectory() && MODEL_NAME.test(e.name)).map((e) => e.name).sort();
    const models: RegistryModelSummary[] = [];
    for (const name of names) {
      const versions = await this.listVersions(name);
      if (versions.length === 0) continue;
      const newest = await this.readManifest(name, versions[versions.length - 1]);
      models.push({ name, task: newest.task, currentVersion: await this.currentVersion(name), versions });
    }
    return models;
  }

  /** The versions of a model, ascending (empty for an unknown model). */
  async listVersions(name: string): Promise<number[]> {
    checkName(name);
    const entries = await readdir(join(this.root, name), { withFileTypes: true }).catch((error: unknown) => {
      if (isMissing(error)) return [];
      throw error;
    });
    return entries
      .filter((e) => e.isDirectory() && /^[1-9]\d*$/.test(e.name))
      .map((e) => Number(e.name))
      .sort((a, b) => a - b);
  }

  /** The promoted version of a model, or undefined when none is. */
  async currentVersion(name: string): Promise<number | undefined> {
    checkName(name);
    const text = await readFile(join(this.root, name, CURRENT_FILE), 'utf8').catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    if (text === undefined) return undefined;
    const version = Number(text.trim());
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new RegistryError('INTEGRITY', `${name}/${CURRENT_FILE} holds "${text.trim()}", not a version number`);
    }
    return version;
  }

  /** The directory of a version. */
  versionDirectory(name: string, version: number): string {
    return join(this.root, name, String(version));
  }

  /** Resolves `version` (the current one when omitted), failing with NOT_FOUND. */
  async #resolve(name: string, version?: number): Promise<number> {
    checkName(name);
    const resolved = version ?? (await this.currentVersion(name));
    if (resolved === undefined) throw new RegistryError('NOT_FOUND', `model "${name}" has no current version`);
    const exists = await stat(this.versionDirectory(name, resolved)).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!exists) throw new RegistryError('NOT_FOUND', `model "${name}" version ${resolved} not found`);
    return resolved;
  }

  /** Reads a version's manifest (the current version when `version` is omitted). */
  async readManifest(name: string, version?: number): Promise<ModelManifest> {
    const resolved = await this.#resolve(name, version);
    const path = join(this.versionDirectory(name, resolved), MANIFEST_FILE);
    try {
      const manifest = fromJsonString(ModelManifestSchema, await readFile(path, 'utf8'), { ignoreUnknownFields: true });
      if (manifest.model?.name !== name || manifest.model.version !== resolved) {
        throw new Error(`it describes ${manifest.model?.name}/${manifest.model?.version}`);
      }
      return manifest;
    } catch (error) {
      throw new RegistryError('INTEGRITY', `${path} is not a valid manifest: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Loads a version (the current one when omitted) and verifies its sha256. */
  async loadModel(name: string, version?: number): Promise<LoadedModel> {
    const manifest = await this.readManifest(name, version);
    const directory = this.versionDirectory(name, manifest.model!.version);
    const bytes = new Uint8Array(await readFile(join(directory, MODEL_FILE)));
    const actual = sha256Hex(bytes);
    if (actual !== manifest.model!.sha256) {
      throw new RegistryError(
        'INTEGRITY',
        `${name}/${manifest.model!.version}/${MODEL_FILE}: sha256 ${actual} does not match the manifest's ${manifest.model!.sha256}`,
      );
    }
    return { manifest, bytes, directory };
  }

  /** The existing version whose model file has this sha256, if any. */
  async findBySha256(name: string, sha256: string): Promise<ModelManifest | undefined> {
    for (const version of await this.listVersions(name)) {
      const manifest = await this.readManifest(name, version);
      if (manifest.model?.sha256 === sha256) return manifest;
    }
    return undefined;
  }

  /**
   * Publishes a new version. Idempotent: a model file identical to an existing version returns
   * that version with `created: false`. Nothing is visible until the version is complete.
   */
  async publish(draft: VersionDraft): Promise<{ manifest: ModelManifest; created: boolean }> {
    const { name } = draft;
    checkName(name);
    if (draft.manifest.task === undefined || draft.manifest.task === ModelTask.UNSPECIFIED) {
      throw new RegistryError('INVALID', `model "${name}": the manifest needs a task`);
    }
    const sha256 = sha256Hex(draft.model);
    const existing = await this.findBySha256(name, sha256);
    if (existing) return { manifest: existing, created: false };

    const modelDirectory = join(this.root, name);
    await mkdir(modelDirectory, { recursive: true });
    for (let attempt = 0; attempt < 5; attempt++) {
      const versions = await this.listVersions(name);
      const version = (versions[versions.length - 1] ?? 0) + 1;
      const manifest = create(ModelManifestSchema, draft.manifest);
      manifest.model = create(ModelRefSchema, { name, version, sha256 });
      manifest.format ||= 'onnx';
      manifest.createTime = timestampNow();
      const staging = join(modelDirectory, `.staging-${randomBytes(6).toString('hex')}`);
      await mkdir(staging);
      try {
        await writeDurably(join(staging, MODEL_FILE), draft.model);
        await writeDurably(join(staging, MANIFEST_FILE), `${toJsonString(ModelManifestSchema, manifest, { prettySpaces: 2 })}\n`);
        await rename(staging, this.versionDirectory(name, version));
        return { manifest, created: true };
      } catch (error) {
        await rm(staging, { recursive: true, force: true });
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw error;
        // Another writer took this version number: try the next one.
      }
    }
    throw new RegistryError('INVALID', `model "${name}": could not claim a version number (too many concurrent publishers)`);
  }

  /**
   * Points `current` at a version, atomically (write a new pointer file, then rename it over the
   * old one). The version must load and verify. Returns the version `current` pointed at before.
   */
  async promote(name: string, version: number): Promise<{ previous: number | undefined; current: number }> {
    await this.loadModel(name, version);
    const previous = await this.currentVersion(name);
    await replaceDurably(join(this.root, name), CURRENT_FILE, `${version}\n`);
    return { previous, current: version };
  }

  /**
   * Records an evaluation's calibrated thresholds (replacing earlier ones) and metrics (merged) in
   * a version's manifest, atomically (a new file renamed over the old). Calibration is the one
   * part of a manifest that changes after publishing: the model file and everything describing
   * it stay as they were.
   */
  async recordCalibration(name: string, version: number, calibration: { thresholds: MessageInitShape<typeof ModelManifestSchema>['thresholds']; metrics?: Record<string, number> }): Promise<ModelManifest> {
    const manifest = await this.readManifest(name, version);
    const updated = create(ModelManifestSchema, manifest);
    updated.thresholds = (calibration.thresholds ?? []).map((t) => create(CalibratedThresholdSchema, t));
    updated.metrics = { ...manifest.metrics, ...calibration.metrics };
    await replaceDurably(this.versionDirectory(name, version), MANIFEST_FILE, `${toJsonString(ModelManifestSchema, updated, { prettySpaces: 2 })}\n`);
    return updated;
  }

  /**
   * Calls `onChange` whenever the current version of `name` changes (and once with the version
   * current at the start). It polls, because inotify events do not cross NFS and most shared
   * volumes that Kubernetes mounts. Returns a function that stops watching.
   */
  watchCurrent(name: string, onChange: (version: number | undefined) => void, options: { intervalMs?: number } = {}): () => void {
    let last: number | undefined | null = null; // null: nothing reported yet
    let stopped = false;
    const check = async () => {
      const version = await this.currentVersion(name).catch(() => last ?? undefined);
      if (!stopped && version !== last) {
        last = version;
        onChange(version);
      }
    };
    void check();
    const timer = setInterval(() => void check(), options.intervalMs ?? 1_000);
    timer.unref();
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }
}
