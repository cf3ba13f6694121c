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
  /** The identities of `a` and `b`, where the file names them (LFW formats). */
  readonly identities?: readonly [string, string];
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
    if (fields.length === 3) return { a: lfwPath(root, fields[0]!, fields[1]!), b: lfwPath(root, fields[0]!, fields[2]!), same: true, fold, identities: [fields[0]!, fields[0]!] as const };
    if (fields.length === 4) return { a: lfwPath(root, fields[0]!, fields[1]!), b: lfwPath(root, fields[2]!, fields[3]!), same: false, fold, identities: [fields[0]!, fields[2]!] as const };
    throw new Error(`${file}:${i + (header ? 2 : 1)}: expected "name n1 n2" or "name1 n1 name2 n2", got "${line}"`);
  });
}

/**
 * Parses `path_a<TAB>path_b<TAB>same[<TAB>fold]` lines (an optional header line; folds numbered
 * from 1, as in LFW); relative paths are under `root`. Also the LFW-names form with the header
 * `fold name1 img1 name2 img2 same` (the shared identity-disjoint splits), whose `root` holds
 * `lfw/<Name>/...` as for {@link readLfwPairs}.
 */
export async function readTsvPairs(file: string, root = dirname(file)): Promise<Pair[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim());
  if (/^fold\tname1\timg1\tname2\timg2\tsame$/.test(lines[0]?.trim() ?? '')) {
    return lines.slice(1).map((line, i) => {
      const [fold, name1, img1, name2, img2, same] = line.split('\t').map((f) => f.trim());
      if (!name1 || !img1 || !name2 || !img2 || (same !== '0' && same !== '1')) throw new Error(`${file}: line ${i + 2}: expected fold, name1, img1, name2, img2, 0|1`);
      return { a: lfwPath(root, name1, img1), b: lfwPath(root, name2, img2), same: same === '1', fold: Number(fold) - 1, identities: [name1, name2] as const };
    });
  }
  const headed = !/^[01]$/.test(lines[0]?.split('\t')[2]?.trim() ?? '');
  return (headed ? lines.slice(1) : lines).map((line, i) => {
    const [a, b, same, fold] = line.split('\t').map((f) => f.trim());
    const lineNumber = i + (headed ? 2 : 1);
    if (!a || !b || (same !== '0' && same !== '1')) throw new Error(`${file}: line ${lineNumber}: expected path_a<TAB>path_b<TAB>0|1[<TAB>fold]`);
    if (fold !== undefined && !/^[1-9]\d*$/.test(fold)) throw new Error(`${file}: line ${lineNumber}: the fold must be a number from 1, got "${fold}"`);
    const resolve = (p: string) => (isAbsolute(p) ? p : join(root, p));
    return { a: resolve(a), b: resolve(b), same: same === '1', fold: fold ? Number(fold) - 1 : 0 };
  });
}

/** The formats a pairs file can be in. */
export type PairsFormat = 'lfw' | 'tsv';

/**
 * Tells an LFW pairs file (`name n1 n2` / `name1 n1 name2 n2`, an optional `folds pairs` header)
 * from a TSV of pairs by its content, never by its name; a file that is neither is an error that
 * says what was expected.
 */
export async function detectPairsFormat(file: string): Promise<PairsFormat> {
  const lines = (await readFile(file, 'utf8')).split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 5);
  const lfwLine = /^\S+\s+\d+\s+(\d+|\S+\s+\d+)$/;
  const body = /^\d+\s+\d+$/.test(lines[0] ?? '') ? lines.slice(1) : lines;
  if (body.length > 0 && body.every((line) => lfwLine.test(line) && !line.includes("/"))) return 'lfw';
  const tsvLine = (line: string) => /^[^\t]+\t[^\t]+\t[01](\t\d+)?$/.test(line) || /^\d+\t[^\t]+\t\d+\t[^\t]+\t\d+\t[01]$/.test(line);
  const rows = lines.length > 1 && !tsvLine(lines[0]!) ? lines.slice(1) : lines;
  if (rows.length > 0 && rows.every(tsvLine)) return 'tsv';
  throw new Error(
    `${file}: not a pairs file faceprint reads: expected LFW pairs ("name n1 n2" or "name1 n1 name2 n2" lines) or a TSV of path_a<TAB>path_b<TAB>0|1[<TAB>fold] (or fold<TAB>name1<TAB>img1<TAB>name2<TAB>img2<TAB>0|1) lines; first line: "${(lines[0] ?? '').slice(0, 80)}"`,
  );
}

/** Reads a pairs file in whichever format {@link detectPairsFormat} finds. */
export async function readPairs(file: string, root?: string): Promise<Pair[]> {
  return (await detectPairsFormat(file)) === 'lfw' ? readLfwPairs(file, root) : readTsvPairs(file, root);
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
  /** The capture condition (e.g. the lighting), where the identities file has a `condition` column. */
  readonly condition?: string;
}

/**
 * Parses a TSV of labelled images: a header naming the columns `identity` and `path` (in either
 * order; an optional `condition` column says how each image was taken; other columns ignored), or
 * headerless `identity<TAB>path` lines; relative paths are under `root`.
 */
export async function readIdentities(file: string, root = dirname(file)): Promise<LabelledImage[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim());
  const header = lines[0]?.split('\t').map((f) => f.trim()) ?? [];
  const named = header.includes('identity') || header.includes('path');
  if (named && !(header.includes('identity') && header.includes('path'))) throw new Error(`${file}: the header must name both an "identity" and a "path" column, got "${header.join(', ')}"`);
  const [identityColumn, pathColumn, conditionColumn] = named ? [header.indexOf('identity'), header.indexOf('path'), header.indexOf('condition')] : [0, 1, -1];
  return (named ? lines.slice(1) : lines).map((line, i) => {
    const fields = line.split('\t').map((f) => f.trim());
    const [identity, path, condition] = [fields[identityColumn], fields[pathColumn], conditionColumn >= 0 ? fields[conditionColumn] : undefined];
    if (!identity || !path) throw new Error(`${file}: line ${i + (named ? 2 : 1)}: expected an identity and a path`);
    return { identity, path: isAbsolute(path) ? path : join(root, path), ...(condition ? { condition } : {}) };
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
