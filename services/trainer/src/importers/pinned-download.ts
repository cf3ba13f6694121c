/**
 * Model files whose public source is a URL: read from a local mirror directory when one is
 * configured (CI, air-gapped installs), else downloaded; either way checked against a pinned sha256.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '@faceprint/model-registry';

/** A file pinned by URL and sha256, and where it sits in a mirror. */
export interface PinnedFile {
  /** The public URL. */
  readonly url: string;
  /** Its lower-case hex sha256. */
  readonly sha256: string;
  /** Its path inside a mirror directory. */
  readonly mirrorPath: string;
}

/** How long a download may take. */
const DOWNLOAD_TIMEOUT_MS = 60_000;

/** Reads the file from `mirrorDir` (when set) or downloads it, and verifies its sha256. */
export async function fetchPinned(file: PinnedFile, mirrorDir: string | undefined): Promise<{ bytes: Uint8Array; from: string }> {
  let bytes: Uint8Array;
  let from: string;
  if (mirrorDir) {
    from = join(mirrorDir, file.mirrorPath);
    try {
      bytes = new Uint8Array(await readFile(from));
    } catch (error) {
      throw new Error(`model mirror: cannot read ${from}: ${(error as Error).message}`, { cause: error });
    }
  } else {
    from = file.url;
    try {
      const response = await fetch(file.url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS), redirect: 'follow' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      throw new Error(
        `cannot download ${file.url}: ${(error as Error).message}. Without network access, set FACEPRINT_MODEL_MIRROR to a directory holding ${file.mirrorPath}`,
        { cause: error },
      );
    }
  }
  const actual = sha256Hex(bytes);
  if (actual !== file.sha256) throw new Error(`${from}: sha256 is ${actual}, expected ${file.sha256} (corrupt, truncated or a different file)`);
  return { bytes, from };
}
