/**
 * Dataset formats: LFW pairs files (View 1 without a header; View 2 with a `folds pairs` header
 * and 10 folds of same-then-different pairs), a generic TSV of pairs, and FDDB ellipse lists.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join } from 'node:path';

/** One verification pair. */
export interface Pair {
  readonly a: string;
  readonly b: string;
  readonly same: boolean;
  readonly fold: number;
}

const lfwPath = (root: string, name: string, number: string) => join(root, 'lfw', name, `${name}_${number.padStart(4, '0')}.jpg`);

/** Parses an LFW pairs file; `root` holds `lfw/<Name>/<Name>_<NNNN>.jpg` (default: the file's folder). */
export async function readLfwPairs(file: string, root = dirname(file)): Promise<Pair[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').map((l) => l.trim()).filter(Boolean);
  const header = /^(\d+)\s+(\d+)$/.exec(lines[0] ?? '');
  const body = header ? lines.slice(1) : lines;
  const perFold = header ? 2 * Number(header[2]) : body.length;
  return body.map((line, i) => {
    const fields = line.split(/\s+/);
    const fold = Math.floor(i / perFold);
    if (fields.length === 3) return { a: lfwPath(root, fields[0]!, fields[1]!), b: lfwPath(root, fields[0]!, fields[2]!), same: true, fold };
    if (fields.length === 4) return { a: lfwPath(root, fields[0]!, fields[1]!), b: lfwPath(root, fields[2]!, fields[3]!), same: false, fold };
    throw new Error(`${file}:${i + (header ? 2 : 1)}: expected "name n1 n2" or "name1 n1 name2 n2", got "${line}"`);
  });
}

/**
 * Parses `path_a<TAB>path_b<TAB>same` lines (an optional header line); relative paths are under
 * `root`. Also the LFW-names form with the header `fold name1 img1 name2 img2 same` (the shared
 * identity-disjoint splits), whose `root` holds `lfw/<Name>/...` as for {@link readLfwPairs}.
 */
export async function readTsvPairs(file: string, root = dirname(file)): Promise<Pair[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim());
  if (/^fold\tname1\timg1\tname2\timg2\tsame$/.test(lines[0]?.trim() ?? '')) {
    return lines.slice(1).map((line, i) => {
      const [fold, name1, img1, name2, img2, same] = line.split('\t').map((f) => f.trim());
      if (!name1 || !img1 || !name2 || !img2 || (same !== '0' && same !== '1')) throw new Error(`${file}: line ${i + 2}: expected fold, name1, img1, name2, img2, 0|1`);
      return { a: lfwPath(root, name1, img1), b: lfwPath(root, name2, img2), same: same === '1', fold: Number(fold) - 1 };
    });
  }
  const rows = /^[01]$/.test(lines[0]?.split('\t')[2]?.trim() ?? '') ? lines : lines.slice(1);
  return rows.map((line, i) => {
    const [a, b, same] = line.split('\t').map((f) => f.trim());
    if (!a || !b || (same !== '0' && same !== '1')) throw new Error(`${file}: line ${i + 1}: expected path_a<TAB>path_b<TAB>0|1`);
    const resolve = (p: string) => (isAbsolute(p) ? p : join(root, p));
    return { a: resolve(a), b: resolve(b), same: same === '1', fold: 0 };
  });
}

/** One annotated FDDB face as an ellipse and its axis-aligned bounding box. */
export interface FddbFace {
  readonly box: { x: number; y: number; width: number; height: number };
}

/** One FDDB image and its faces. */
export interface FddbImage {
  readonly path: string;
  readonly faces: readonly FddbFace[];
}

/**
 * Parses FDDB ellipse lists (`path`, face count, then `major minor angle cx cy 1` per face; radii
 * in pixels, the angle in radians). Each ellipse becomes its axis-aligned bounding box.
 */
export async function readFddb(files: readonly string[], root: string): Promise<FddbImage[]> {
  const images: FddbImage[] = [];
  for (const file of files) {
    const lines = (await readFile(file, 'utf8')).split('\n').map((l) => l.trim()).filter(Boolean);
    for (let i = 0; i < lines.length; ) {
      const path = join(root, `${lines[i]!}.jpg`);
      const count = Number(lines[i + 1]);
      if (!Number.isInteger(count)) throw new Error(`${file}: line ${i + 2}: expected a face count`);
      const faces = lines.slice(i + 2, i + 2 + count).map((line) => {
        const [major, minor, angle, cx, cy] = line.split(/\s+/).map(Number) as [number, number, number, number, number];
        const halfWidth = Math.hypot(major * Math.cos(angle), minor * Math.sin(angle));
        const halfHeight = Math.hypot(major * Math.sin(angle), minor * Math.cos(angle));
        return { box: { x: cx - halfWidth, y: cy - halfHeight, width: 2 * halfWidth, height: 2 * halfHeight } };
      });
      images.push({ path, faces });
      i += 2 + count;
    }
  }
  return images;
}

/** One labelled image. */
export interface LabelledImage {
  readonly identity: string;
  readonly path: string;
}

/**
 * Parses `identity<TAB>path[<TAB>...]` lines (a header line starting with `identity` is skipped);
 * relative paths are under `root`.
 */
export async function readIdentities(file: string, root = dirname(file)): Promise<LabelledImage[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim());
  const rows = lines[0]?.split('\t')[0]?.trim() === 'identity' ? lines.slice(1) : lines;
  return rows.map((line, i) => {
    const [identity, path] = line.split('\t').map((f) => f.trim());
    if (!identity || !path) throw new Error(`${file}: line ${i + 1}: expected identity<TAB>path`);
    return { identity, path: isAbsolute(path) ? path : join(root, path) };
  });
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.avif', '.pgm', '.bmp', '.tif', '.tiff']);

/** Labelled images from a folder per identity (`DIR/<identity>/<image>`) or an identities TSV. */
export async function readLabelledImages(dataset: string, root?: string): Promise<LabelledImage[]> {
  if ((await stat(dataset)).isFile()) return readIdentities(dataset, root);
  const images: LabelledImage[] = [];
  for (const identity of (await readdir(dataset, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort()) {
    for (const file of (await readdir(join(dataset, identity))).sort()) {
      if (IMAGE_EXTENSIONS.has(extname(file).toLowerCase())) images.push({ path: join(dataset, identity, file), identity });
    }
  }
  return images;
}
