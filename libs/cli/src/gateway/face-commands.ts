/**
 * The face commands: `enroll`, `verify`, `compare`, `identify`, `detect`, each one call to the
 * gateway. With `--json` each prints one JSON object; without, a readable summary.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { create, toJson } from '@bufbuild/protobuf';
import { IMAGE_MAX_BYTES, qualityFields } from '@faceprint/contracts';
import { BoxSchema, DecisionRecordSchema, LegalBasis, type FaceQuality, type ModelRef } from '@faceprint/contracts/common';
import type { Decision } from '@faceprint/contracts/gateway';
// The datasets module alone: the evaluation barrel would load the whole mesh for one folder reader.
import { readLabelledImages } from '@faceprint/evaluation/datasets';
import { connect, EXIT, GLOBAL_OPTIONS, numberFlag, parseFlags, UsageError } from './connection.js';

const MAX_IMAGES_PER_ENROLL = 10;

const print = (json: boolean, object: unknown, text: string) => process.stdout.write(json ? `${JSON.stringify(object)}\n` : `${text}\n`);
const modelName = (model: ModelRef | undefined) => (model ? `${model.name}@${model.version}` : '');
const decisionJson = (decision: Decision | undefined, model: ModelRef | undefined) => ({
  match: decision?.isMatch ?? false,
  score: decision?.score ?? 0,
  threshold: decision?.threshold ?? 0,
  far: decision?.targetFar ?? 0,
  // 0 where the calibration recorded no bound (a manifest made before bounds were recorded).
  far_upper_95: decision?.farUpper95 ?? 0,
  calibration_impostor_pairs: Number(decision?.calibrationImpostorPairs ?? 0n),
  templates_compared: decision?.templatesCompared || 1,
  model: modelName(model),
});
const decisionText = (d: ReturnType<typeof decisionJson>) =>
  `${d.match ? 'MATCH' : 'no match'}: score ${d.score.toFixed(4)}, threshold ${d.threshold.toFixed(4)}${d.templates_compared > 1 ? ` for each of ${d.templates_compared} templates` : ''} (false-match rate ${d.far}${d.far_upper_95 ? `, at most ${d.far_upper_95.toExponential(2)} with 95% confidence over ${d.calibration_impostor_pairs} impostor comparisons` : ''}), model ${d.model}`;
const farFlag = (value: string | undefined) => numberFlag(value, '--far', (n) => n > 0 && n <= 0.5, 'a false-match rate in (0, 0.5] that the model is calibrated for, e.g. 1e-4');

/** `--face-region X,Y,W,H`: the box of the face to use, in pixels of the upright image. */
function faceRegionFlag(value: string | undefined, flag = '--face-region') {
  if (value === undefined) return undefined;
  const numbers = value.split(',').map((part) => (part.trim() === '' ? Number.NaN : Number(part)));
  const [x, y, width, height] = numbers as [number, number, number, number];
  if (numbers.length !== 4 || !numbers.every(Number.isFinite) || x < 0 || y < 0 || width <= 0 || height <= 0) {
    throw new UsageError(`${flag} must be X,Y,WIDTH,HEIGHT in pixels (x, y at least 0; width, height above 0), e.g. 120,80,200,200; got "${value}"`);
  }
  return create(BoxSchema, { x, y, width, height });
}

/** An image file with the face region to use, if one was given. */
const imageInput = async (path: string, region: ReturnType<typeof faceRegionFlag>) => {
  const content = await readImageFile(path);
  return region ? { content, faceRegion: region } : content;
};

function legalBasis(name: string | undefined): LegalBasis | undefined {
  if (name === undefined) return undefined;
  const basis = LegalBasis[name.toUpperCase() as keyof typeof LegalBasis] as LegalBasis | undefined;
  if (basis === undefined || basis === LegalBasis.UNSPECIFIED) throw new UsageError(`--basis must be one of explicit_consent, employment_law, vital_interests, legal_claims, substantial_public_interest, got "${name}"`);
  return basis;
}

/** A request id derived from what is enrolled: running the same command again replays it. */
const enrollRequestId = (subjectId: string, images: readonly Uint8Array[], consent: object) => {
  const hash = createHash('sha256').update(subjectId).update(JSON.stringify(consent));
  for (const image of images) hash.update(createHash('sha256').update(image).digest());
  return `cli-${hash.digest('hex').slice(0, 40)}`;
};

/**
 * An image file's bytes. What cannot be sent is a usage error (exit 2) saying why: a missing or
 * unreadable file, a directory, or a file over the API's per-image limit (the gateway would
 * refuse it, or grpc-js before it).
 */
async function readImageFile(path: string): Promise<Buffer> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(error.code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot be read (${error.code ?? error.message})`);
  });
  if (info.isDirectory()) throw new UsageError(`${path} is a directory: name image files (enroll --dir takes a folder of <subject>/<image> folders)`);
  if (info.size > IMAGE_MAX_BYTES) throw new UsageError(`${path} is ${info.size} bytes; an image may be at most ${IMAGE_MAX_BYTES} bytes (10 MiB)`);
  return readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`${path}: cannot be read (${error.code ?? error.message})`);
  });
}

export async function enroll(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    options: { ...GLOBAL_OPTIONS, subject: { type: 'string' }, dir: { type: 'string' }, purpose: { type: 'string' }, basis: { type: 'string' }, 'retention-days': { type: 'string' }, 'request-id': { type: 'string' }, 'keep-crops': { type: 'boolean', default: false } },
  });
  const consent = {
    // Only when set, so that the request ids of earlier enrolments (derived from the consent) stay as they were.
    ...(values['keep-crops'] ? { retainAlignedCrops: true } : {}),
    basis: legalBasis(values.basis),
    purpose: values.purpose,
    retentionDays: numberFlag(values['retention-days'], '--retention-days', (n) => Number.isInteger(n) && n >= 1, 'a whole number of days, at least 1'),
    collectionPoint: 'faceprint-cli',
  };
  const batches: { subjectId: string; files: string[] }[] = [];
  if (values.dir) {
    if (values.subject || positionals.length > 0) throw new UsageError('enroll takes either --dir DIR or --subject ID IMAGE..., not both');
    if (values['request-id']) throw new UsageError('--request-id names one enrolment: it does not go with --dir');
    for (const { identity, path } of await readLabelledImages(values.dir)) {
      const last = batches[batches.length - 1];
      if (last?.subjectId === identity) last.files.push(path);
      else batches.push({ subjectId: identity, files: [path] });
    }
    if (batches.length === 0) throw new UsageError(`${values.dir} holds no <subject>/<image> folders`);
  } else {
    if (!values.subject || positionals.length === 0) throw new UsageError('enroll needs --subject ID and at least one IMAGE (or --dir DIR)');
    batches.push({ subjectId: values.subject, files: positionals });
  }
  const client = connect(values, 'operator');
  const enrolled: { subject: string; template_ids: string[]; template_count: number; replayed: boolean; consistency?: { flagged: boolean; best_scores: number[]; threshold: number; far: number } }[] = [];
  const failed: { subject: string; error: string }[] = [];
  const progress = values.dir && process.stderr.isTTY;
  // Piped (a CI log, a file), a plain line every 10 subjects and at the end instead of a counter.
  const plainProgress = values.dir && !process.stderr.isTTY;
  try {
    for (const [n, batch] of batches.entries()) {
      // The API takes at most 10 images per enrolment: larger folders go in several.
      for (let start = 0; start < batch.files.length; start += MAX_IMAGES_PER_ENROLL) {
        const images = await Promise.all(batch.files.slice(start, start + MAX_IMAGES_PER_ENROLL).map((f) => readImageFile(f)));
        try {
          const response = await client.enroll({ subjectId: batch.subjectId, images, consent, requestId: values['request-id'] ? `${values['request-id']}${start > 0 ? `-${start}` : ''}` : enrollRequestId(batch.subjectId, images, consent) });
          const consistency = response.consistency && {
            flagged: response.consistency.flagged,
            best_scores: response.consistency.templates.map((t) => Number(t.bestScore.toFixed(4))),
            threshold: Number(response.consistency.threshold.toFixed(4)),
            far: response.consistency.far,
          };
          enrolled.push({ subject: batch.subjectId, template_ids: response.templateIds, template_count: response.templateCount, replayed: response.replayed, ...(consistency ? { consistency } : {}) });
          if (consistency?.flagged) {
            process.stderr.write(`faceprint: WARNING: ${batch.subjectId}: the photos may not all be of one person (best scores ${consistency.best_scores.join(', ')}; threshold ${consistency.threshold} at false-match rate ${consistency.far}); check them, and delete templates that are someone else's\n`);
          }
        } catch (error) {
          if (!values.dir) throw error;
          failed.push({ subject: batch.subjectId, error: (error as Error).message });
        }
      }
      // A one-line counter on a terminal is all the progress this needs (no progress-bar dependency).
      if (progress) process.stderr.write(`\renrolling: ${'#'.repeat(Math.round(((n + 1) / batches.length) * 30)).padEnd(30, '.')} ${n + 1}/${batches.length} subjects`);
      if (plainProgress && ((n + 1) % 10 === 0 || n + 1 === batches.length)) process.stderr.write(`enrolling: ${n + 1}/${batches.length} subjects, ${failed.length} failed\n`);
    }
  } finally {
    if (progress) process.stderr.write('\n');
    client.close();
  }
  const text = [
    ...enrolled.map((e) => `${e.subject}: ${e.template_ids.length} template(s) ${e.replayed ? 'already enrolled (replayed)' : 'enrolled'}, ${e.template_count} in all`),
    ...failed.map((f) => `${f.subject}: FAILED: ${f.error}`),
  ].join('\n');
  print(values.json, values.dir ? { subjects: enrolled, failed } : enrolled[0], text);
  return failed.length > 0 ? EXIT.failed : EXIT.ok;
}

export async function verify(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    options: { ...GLOBAL_OPTIONS, subject: { type: 'string' }, far: { type: 'string' }, 'face-region': { type: 'string' }, purpose: { type: 'string' }, frames: { type: 'string', multiple: true } },
  });
  if (!values.subject || positionals.length !== 1) throw new UsageError('verify needs --subject ID and one IMAGE');
  const far = farFlag(values.far);
  const region = faceRegionFlag(values['face-region']);
  const purpose = values.purpose;
  if (purpose !== undefined && purpose !== 'payment_verification' && purpose !== 'login') throw new UsageError(`--purpose: payment_verification or login, got "${purpose}"`);
  const frameFiles = (values.frames ?? []).flatMap((f) => f.split(',')).filter(Boolean);
  if (frameFiles.length > 9) throw new UsageError(`--frames: at most 9 more frames of the capture, got ${frameFiles.length}`);
  const client = connect(values, 'operator');
  try {
    const frames = await Promise.all(frameFiles.map((f) => imageInput(f, undefined)));
    const response = await client.verify(values.subject, await imageInput(positionals[0]!, region), { far, ...(purpose ? { purpose } : {}), frames });
    const liveness = response.liveness;
    const result = {
      ...decisionJson(response.decision, response.models?.embedder),
      ...(response.face?.quality ? { face_quality: qualityJson(response.face.quality) } : {}),
      ...(liveness
        ? {
            liveness: {
              bona_fide: liveness.isBonaFide,
              score: liveness.score,
              threshold: liveness.threshold,
              frame_scores: liveness.frameScores,
              target_bpcer: liveness.targetBpcer,
              development_apcer: liveness.developmentApcer,
              model: liveness.model ? `${liveness.model.name}@${liveness.model.version}` : null,
            },
          }
        : {}),
      // The matcher's signed record, in protobuf JSON: `faceprint receipt verify` checks this output offline.
      ...(response.decisionRecord ? { decision_record: toJson(DecisionRecordSchema, response.decisionRecord) } : {}),
    };
    const pad = liveness ? `\npresentation-attack check: ${liveness.isBonaFide ? 'bona fide' : 'ATTACK suspected: not a match'} (score ${liveness.score.toFixed(3)}, threshold ${liveness.threshold.toFixed(3)}, ${liveness.frameScores.length} frame(s), ${liveness.model?.name} v${liveness.model?.version})` : '';
    print(values.json, result, `${values.subject}: ${decisionText(result)}${pad}`);
    return EXIT.ok;
  } finally {
    client.close();
  }
}

export async function compare(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    options: { ...GLOBAL_OPTIONS, far: { type: 'string' }, 'face-region': { type: 'string' }, 'second-face-region': { type: 'string' }, sign: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 2) throw new UsageError('compare needs two images: IMAGE_A IMAGE_B');
  const far = farFlag(values.far);
  const regions = [faceRegionFlag(values['face-region']), faceRegionFlag(values['second-face-region'], '--second-face-region')];
  const client = connect(values, 'operator');
  try {
    const response = await client.compare(await imageInput(positionals[0]!, regions[0]), await imageInput(positionals[1]!, regions[1]), { far, signDecision: values.sign });
    const result = {
      ...decisionJson(response.decision, response.models?.embedder),
      ...(response.decisionRecord ? { decision_record: toJson(DecisionRecordSchema, response.decisionRecord) } : {}),
    };
    print(values.json, result, decisionText(result));
    return EXIT.ok;
  } finally {
    client.close();
  }
}

export async function identify(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({ args: argv, allowPositionals: true, options: { ...GLOBAL_OPTIONS, top: { type: 'string' }, far: { type: 'string' }, 'face-region': { type: 'string' } } });
  if (positionals.length !== 1) throw new UsageError('identify needs one IMAGE');
  const region = faceRegionFlag(values['face-region']);
  const top = numberFlag(values.top, '--top', (n) => Number.isInteger(n) && n >= 1 && n <= 100, 'a whole number from 1 to 100');
  const far = farFlag(values.far);
  const client = connect(values, 'operator');
  try {
    const response = await client.identify(await imageInput(positionals[0]!, region), { top, far });
    const candidates = response.candidates.map((c) => ({ subject: c.subjectId, score: c.decision?.score ?? 0, match: c.decision?.isMatch ?? false }));
    const text = candidates.length === 0 ? 'no candidates (the gallery holds no template of this model)' : ['rank  subject                           score   match', ...candidates.map((c, i) => `${String(i + 1).padStart(4)}  ${c.subject.padEnd(32)}  ${c.score.toFixed(4)}  ${c.match ? 'yes' : 'no'}`)].join('\n');
    print(values.json, { candidates, far: response.candidates[0]?.decision?.targetFar, model: modelName(response.models?.embedder) }, text);
    return EXIT.ok;
  } finally {
    client.close();
  }
}

/** A face's quality measures as the JSON output names them: FaceQuality's fields, pose as `yaw`, `pitch`, `roll` (the names detect has printed). */
function qualityJson(q: FaceQuality) {
  const { yaw_degrees: yaw, pitch_degrees: pitch, roll_degrees: roll, ...measures } = qualityFields(q);
  return { ...measures, yaw, pitch, roll };
}

export async function detect(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({ args: argv, allowPositionals: true, options: { ...GLOBAL_OPTIONS, out: { type: 'string' } } });
  if (positionals.length !== 1) throw new UsageError('detect needs one IMAGE');
  const image = await readImageFile(positionals[0]!);
  const client = connect(values, 'operator');
  try {
    const response = await client.detect(image);
    const faces = response.faces.map((f) => ({ box: f.box && { x: f.box.x, y: f.box.y, width: f.box.width, height: f.box.height }, score: f.score, landmarks: f.landmarks ? [f.landmarks.leftEye, f.landmarks.rightEye, f.landmarks.noseTip, f.landmarks.mouthLeft, f.landmarks.mouthRight].map((p) => [p?.x ?? 0, p?.y ?? 0]) : [], quality: f.quality && qualityJson(f.quality) }));
    if (values.out) await drawFaces(image, faces, values.out);
    const text = [`${faces.length} face(s) in ${response.image?.width}x${response.image?.height}`, ...faces.map((f, i) => `  ${i + 1}: box ${f.box?.x.toFixed(0)},${f.box?.y.toFixed(0)} ${f.box?.width.toFixed(0)}x${f.box?.height.toFixed(0)}, score ${f.score.toFixed(3)}${f.quality ? `, quality ${f.quality.unified_score.toFixed(0)}` : ''}`)];
    if (values.out) text.push(`drawn on ${values.out}`);
    print(values.json, { faces, image: { width: response.image?.width, height: response.image?.height }, model: modelName(response.models?.detector) }, text.join('\n'));
    return EXIT.ok;
  } finally {
    client.close();
  }
}

/** A PNG copy of the (upright) image with each face's box and landmarks drawn on it. */
async function drawFaces(image: Uint8Array, faces: { box?: { x: number; y: number; width: number; height: number } | undefined; landmarks: number[][] }[], out: string): Promise<void> {
  const { default: sharp } = await import('sharp'); // only `detect --out` draws: the other commands start without it
  const upright = sharp(image).rotate();
  const { width, height } = await upright.clone().metadata().then(async (m) => ((m.orientation ?? 1) >= 5 ? { width: m.height, height: m.width } : { width: m.width, height: m.height }));
  const stroke = Math.max(2, Math.round(Math.min(width ?? 0, height ?? 0) / 200));
  const shapes = faces.flatMap((f) => [
    f.box ? `<rect x="${f.box.x}" y="${f.box.y}" width="${f.box.width}" height="${f.box.height}" fill="none" stroke="#00e676" stroke-width="${stroke}"/>` : '',
    ...f.landmarks.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="${stroke * 1.5}" fill="#ff1744"/>`),
  ]);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`;
  await upright.composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).png().toFile(out);
}

/** `faceprint gallery status`: the model versions the gallery holds and who needs re-enrolment. */
export async function gallery(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'reembed') return reembed(rest);
  if (command !== 'status') throw new UsageError('gallery takes status or reembed');
  const { values } = parseFlags({ args: rest, options: GLOBAL_OPTIONS });
  const client = connect(values, 'operator');
  try {
    const status = await client.galleryStatus();
    const versions = status.versions.map((v) => ({ model: modelName(v.model), subjects: v.subjects, templates: v.templates, current: v.current }));
    const text = [
      `${status.subjects} subject(s); ${status.subjectsNeedingReenrolment} without a template of the current model version (to re-enrol)`,
      ...versions.map((v) => `  ${String(v.model).padEnd(32)} ${String(v.subjects).padStart(7)} subjects ${String(v.templates).padStart(8)} templates${v.current ? '  (current)' : ''}`),
    ];
    print(values.json, { subjects: status.subjects, subjects_needing_reenrolment: status.subjectsNeedingReenrolment, versions }, text.join('\n'));
    return EXIT.ok;
  } finally {
    client.close();
  }
}

/** `faceprint gallery reembed`: templates re-created from kept crops with the serving model. */
async function reembed(argv: string[]): Promise<number> {
  const { values } = parseFlags({ args: argv, options: GLOBAL_OPTIONS });
  const client = connect(values, 'operator');
  try {
    let last: { model: string; subjects_done: number; subjects_total: number; templates_added: number } | undefined;
    for await (const progress of client.reembedGallery()) {
      last = { model: modelName(progress.model), subjects_done: progress.subjectsDone, subjects_total: progress.subjectsTotal, templates_added: progress.templatesAdded };
      if (process.stderr.isTTY) process.stderr.write(`\r${last.subjects_done}/${last.subjects_total} subjects, ${last.templates_added} templates`);
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
    print(values.json, last ?? {}, last ? `${last.templates_added} template(s) re-created with ${last.model} for ${last.subjects_done} of ${last.subjects_total} subject(s)` : 'nothing to do');
    return EXIT.ok;
  } finally {
    client.close();
  }
}
