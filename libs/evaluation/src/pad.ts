/**
 * Presentation-attack detection data and metrics, in the terms of ISO/IEC 30107-3: APCER (the
 * share of attack presentations accepted as bona fide) and BPCER (the share of bona fide
 * presentations rejected), per attack type, per frame and per video (the mean score of a video's
 * frames), and the threshold that holds BPCER to a target on development data.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';

/** One labelled frame. */
export interface PadFrame {
  /** The image file. */
  readonly path: string;
  /** Whether it shows a live face (else an attack). */
  readonly bonaFide: boolean;
  /** For attacks: the kind, e.g. "print", "screen_photo", "screen_video" (else "bona_fide"). */
  readonly attackType: string;
  /** The split it belongs to ("train", "devel", ...), or "" when the listing has none. */
  readonly split: string;
  /** The video (or capture) it was taken from; frames of one video are scored together per video. */
  readonly video: string;
  /** How the attack instrument was held, e.g. "fixed" or "hand" (Replay-Attack's support), or "". */
  readonly support: string;
}

const BONA_FIDE_LABELS = new Set(['real', 'bona_fide', 'bonafide', 'live', 'genuine']);
const ATTACK_LABELS = new Set(['attack', 'spoof', 'fake']);

/**
 * The attack type of a Replay-Attack video name (`attack_print_…_photo`, `attack_mobile_…_video`,
 * `attack_highdef_…_photo`): a printed photo, or a photo or video shown on a phone or tablet screen.
 */
export function replayAttackType(name: string): string | undefined {
  const medium = /attack_(print|mobile|highdef)_/.exec(name)?.[1];
  if (!medium) return undefined;
  if (medium === 'print') return 'print';
  return /_video_/.test(name) ? 'screen_video' : 'screen_photo';
}

/**
 * Reads a frames listing: a TSV whose header names `file` (or `path`) and `label` (real /
 * bona_fide or attack), and optionally `split`, `video`, `support` and `attack_type` (for Replay-Attack
 * listings the type is read from the video name when there is no such column). Relative paths are
 * under `root` (default: the file's folder).
 */
export async function readPadFrames(file: string, root = dirname(file)): Promise<PadFrame[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split('\t').map((h) => h.trim().toLowerCase());
  const column = (...names: string[]) => header.findIndex((h) => names.includes(h));
  const [pathColumn, labelColumn] = [column('file', 'path'), column('label')];
  if (pathColumn < 0 || labelColumn < 0) throw new Error(`${file}: expected a TSV header naming "file" (or "path") and "label", got "${lines[0] ?? ''}"`);
  const [splitColumn, videoColumn, typeColumn, supportColumn] = [column('split'), column('video'), column('attack_type'), column('support')];
  return lines.slice(1).map((line, i) => {
    const fields = line.split('\t');
    const path = fields[pathColumn]?.trim() ?? '';
    const label = fields[labelColumn]?.trim().toLowerCase() ?? '';
    const where = `${file}:${i + 2}`;
    if (!path) throw new Error(`${where}: no file named`);
    if (!BONA_FIDE_LABELS.has(label) && !ATTACK_LABELS.has(label)) throw new Error(`${where}: label must be real or attack, got "${label}"`);
    const bonaFide = BONA_FIDE_LABELS.has(label);
    const video = (videoColumn >= 0 ? fields[videoColumn]?.trim() : '') || path;
    const attackType = bonaFide ? 'bona_fide' : (typeColumn >= 0 ? fields[typeColumn]?.trim() : '') || replayAttackType(video) || replayAttackType(path) || 'attack';
    const optional = (c: number) => (c >= 0 ? (fields[c]?.trim() ?? '') : '');
    return { path: path.startsWith('/') ? path : join(root, path), bonaFide, attackType, split: optional(splitColumn), video, support: optional(supportColumn) };
  });
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff']);

/** The frames of two folders: every image under `real` is bona fide, every image under `attack` an attack (one video per file). */
export async function readPadFolders(real: string, attack: string): Promise<PadFrame[]> {
  const images = async (dir: string) =>
    (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase()))
      .map((e) => join(e.parentPath, e.name))
      .sort();
  const frames = (paths: string[], bonaFide: boolean) =>
    paths.map((path) => ({ path, bonaFide, attackType: bonaFide ? 'bona_fide' : (replayAttackType(path) ?? 'attack'), split: '', video: path, support: '' }));
  return [...frames(await images(real), true), ...frames(await images(attack), false)];
}

/** A scored presentation (a frame, or a video's frames together). */
export interface ScoredPresentation {
  readonly score: number;
  readonly bonaFide: boolean;
  readonly attackType: string;
}

/** Scored frames grouped by video: each video as its first frame (label, type, ...) with the mean of its frames' scores. */
export function byVideo<T extends ScoredPresentation & { readonly video: string }>(frames: readonly T[]): T[] {
  const videos = new Map<string, { first: T; sum: number; count: number }>();
  for (const f of frames) {
    const v = videos.get(f.video) ?? { first: f, sum: 0, count: 0 };
    v.sum += f.score;
    v.count += 1;
    videos.set(f.video, v);
  }
  return [...videos.values()].map((v) => ({ ...v.first, score: v.sum / v.count }));
}

/** APCER and BPCER at one threshold (a presentation is accepted as bona fide when score >= threshold), with APCER per attack type. */
export interface PadRates {
  readonly threshold: number;
  readonly apcer: number;
  readonly bpcer: number;
  readonly attacks: number;
  readonly bonaFide: number;
  readonly apcerByAttackType: Record<string, number>;
}

/** The rates at `threshold`. */
export function padRatesAt(presentations: readonly ScoredPresentation[], threshold: number): PadRates {
  const attacks = presentations.filter((p) => !p.bonaFide);
  const bonaFide = presentations.filter((p) => p.bonaFide);
  const types = [...new Set(attacks.map((a) => a.attackType))].sort();
  const accepted = (list: readonly ScoredPresentation[]) => list.filter((p) => p.score >= threshold).length;
  return {
    threshold,
    apcer: attacks.length ? accepted(attacks) / attacks.length : 0,
    bpcer: bonaFide.length ? (bonaFide.length - accepted(bonaFide)) / bonaFide.length : 0,
    attacks: attacks.length,
    bonaFide: bonaFide.length,
    apcerByAttackType: Object.fromEntries(types.map((t) => {
      const ofType = attacks.filter((a) => a.attackType === t);
      return [t, accepted(ofType) / ofType.length];
    })),
  };
}

/**
 * The highest threshold that rejects at most `targetBpcer` of the bona fide presentations (so the
 * fewest attacks get through at that rejection rate), and the rates there. Thresholds are chosen
 * on development data; the rates on other data are what a report states.
 */
export function thresholdForBpcer(presentations: readonly ScoredPresentation[], targetBpcer: number): PadRates {
  const scores = presentations.filter((p) => p.bonaFide).map((p) => p.score).sort((a, b) => a - b);
  if (scores.length === 0) throw new Error('no bona fide presentations to choose a threshold on');
  // Rejecting the k lowest bona fide scores: the threshold sits at the (k+1)-th lowest.
  const rejected = Math.floor(targetBpcer * scores.length + 1e-9);
  return padRatesAt(presentations, scores[Math.min(rejected, scores.length - 1)]!);
}

/** The DET curve: (BPCER, APCER) at every distinct score, for plotting. */
export function padDetCurve(presentations: readonly ScoredPresentation[]): { bpcer: number; apcer: number }[] {
  const thresholds = [...new Set(presentations.map((p) => p.score))].sort((a, b) => a - b);
  return thresholds.map((t) => {
    const { apcer, bpcer } = padRatesAt(presentations, t);
    return { bpcer, apcer };
  });
}

/** The equal error rate: where APCER and BPCER cross (their mean at the closest threshold). */
export function padEqualErrorRate(presentations: readonly ScoredPresentation[]): number {
  let best = { gap: Infinity, rate: 1 };
  for (const { apcer, bpcer } of padDetCurve(presentations)) {
    const gap = Math.abs(apcer - bpcer);
    if (gap < best.gap) best = { gap, rate: (apcer + bpcer) / 2 };
  }
  return best.rate;
}
