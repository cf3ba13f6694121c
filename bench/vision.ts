/**
 * `npm run bench:vision [-- --json]`: the vision pipeline through the mesh (detector, aligner and
 * embedder processes over gRPC on loopback) against the same models and code called directly
 * through onnxruntime-node in this process, on the same images in the same run, the two taking
 * turns so that both see the machine in the same state.
 *
 * - Latency at concurrency 1: end-to-end p50/p99 per image, per stage, and the mesh/direct ratio;
 *   beside it, the time per image outside the services' handlers (the price of the three calls)
 *   and the round trip of an empty call: a health check to a service process, and a call to a
 *   bare grpc-js server (plain-grpc-echo.ts), each back to back and after the server has been idle
 *   as long as a service is within the pipeline.
 *   And a request with two images (compare, enrolment) through the mesh, the images one after the
 *   other and at the same time (as the gateway sends them).
 * - Embedder throughput at concurrency 64 (single-crop calls), with batching on and off, against
 *   direct batch-64 inference: the ratio says what the service layer costs under load. Beside it,
 *   the same load on a bare grpc-js embedder (minimal-embedder.ts: the transport, preprocessing and
 *   inference thread without protobuf, validation or telemetry) from a bare client: the ceiling
 *   of a grpc-js embedder on the machine measured, whose caller shares its cores. And the CPU each
 *   crop took (this process for direct inference; the server process and this process, the
 *   caller, for the others): where every core is busy, throughput follows CPU per crop.
 * - What flip averaging in the embedder's graph costs: the model with and without it, direct.
 * - What a presentation-attack check adds to a payment verify: the gateway's three calls (the
 *   liveness model's status, the align to its template, the assessment) on one frame through the
 *   mesh, and the PAD model alone, direct. The model is the colour-texture graph with an untrained
 *   (zero) head: the same computation as a trained one, without training data.
 * Figures are printed, never asserted: this is a benchmark, not a test.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { AlignedFaceSchema, PixelFormat } from '@faceprint/contracts/common';
import { acquireServices, buildModelRegistry, forEachConcurrently } from '@faceprint/mesh';
import { FacePipeline } from '@faceprint/face-pipeline';
import { decodeImage } from '@faceprint/imaging';
import { ModelRegistry, registryRootFromEnv } from '@faceprint/model-registry';
import { imageInputOf } from '@faceprint/onnx';
import { EmbedderService } from '@faceprint/contracts/embedder';
import { Health } from '@faceprint/contracts/health';
import { createClient, DEFAULT_FLOW_CONTROL_WINDOW_BYTES, durationMs } from '@faceprint/service-kit';
import { Client, credentials } from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import { fitSimilarity, warp } from '../services/aligner/src/similarity.js';
import { detectFaces, detectorModel } from '../services/detector/src/face-detection.js';
import { buildFaceRecognitionNet } from '../services/trainer/src/importers/face-api/face-recognition-net.js';
import { locateFaceApiPackage } from '../services/trainer/src/importers/face-api/importers.js';
import { readWeights } from '../services/trainer/src/importers/face-api/weights.js';
import { buildColourTextureGraph, colourTextureManifestFields, FEATURE_LENGTH, PAD_CROP_SIZE, PAD_INPUT } from '../services/trainer/src/jobs/pad-train/colour-texture-graph.js';
import { chooseFace } from '@faceprint/face-pipeline';
import { LivenessService } from '@faceprint/contracts/liveness';
import { rm } from 'node:fs/promises';

const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, images: { type: 'string' }, rounds: { type: 'string', default: '3' } } });
const log = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
const imagesDir = values.images ?? join(import.meta.dirname, '../../shared/models/test-images/identities');
const files = (await readdir(imagesDir, { recursive: true })).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => join(imagesDir, f));
const images = await Promise.all(files.map((f) => readFile(f)));
const rounds = Number(values.rounds);
if (!(await buildModelRegistry())) throw new Error('the model registry could not be built (see above)');

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const summary = (ms: number[]) => ({ p50: percentile(ms, 50), p99: percentile(ms, 99) });
/** CPU time (user + system, all threads) of this process in ms. */
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
/** CPU time of another process in ms, from /proc (Linux; undefined elsewhere). Clock ticks are 10 ms (USER_HZ 100). */
const processCpuMs = (pid: number | undefined): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
};

// The direct pipeline: the services' own code and models in this process.
const registry = new ModelRegistry(registryRootFromEnv(process.env));
const detectorFile = await registry.loadModel('yunet-n');
const detectorSession = await ort.InferenceSession.create(detectorFile.bytes, { graphOptimizationLevel: 'all' });
const detectDirect = detectorModel(detectorFile.manifest, async (data, dims) => {
  const outputs = await detectorSession.run({ [detectorSession.inputNames[0]!]: new ort.Tensor('float32', data, dims) });
  return Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, tensor.data as Float32Array]));
});
const embedderModel = await registry.loadModel('face-recognition-net');
const embedderInput = imageInputOf(embedderModel.manifest);
// The embedding model straight through onnxruntime-node on this thread (ORT's own defaults): the baseline the service is held to.
const embedderSession = await ort.InferenceSession.create(embedderModel.bytes, { graphOptimizationLevel: 'all' });
const embedDirect = (tensor: Float32Array, count: number) =>
  embedderSession.run({ [embedderInput.name]: new ort.Tensor('float32', tensor, [count, 3, embedderInput.height, embedderInput.width]) });
const template = embedderModel.manifest.alignment!;
const target = template.points.map((p) => [p.x, p.y] as const);
const detectSettings = { inputSize: 640, scoreThreshold: 0.6, nmsIou: 0.3, minFaceSize: 0, maxFaces: 1000, smallImagePadding: 0.5 };

type Stages = { total: number[]; detect: number[]; align: number[]; embed: number[] };
const newStages = (): Stages => ({ total: [], detect: [], align: [], embed: [] });

/** One image through the pipeline in this process: decode, detect, decode again (as the aligner does), warp, embed. */
async function directImage(bytes: Uint8Array, stages: Stages): Promise<Uint8Array> {
  const t0 = performance.now();
  const image = await decodeImage(bytes);
  const [face] = await detectFaces(detectDirect, image, detectSettings);
  const t1 = performance.now();
  const decodedAgain = await decodeImage(bytes);
  const pixels = warp(decodedAgain, fitSimilarity(face!.landmarks, target), template.width, template.height);
  const t2 = performance.now();
  const crop = create(AlignedFaceSchema, { pixels, width: template.width, height: template.height, format: PixelFormat.RGB8 });
  await embedDirect(embedderInput.toTensor([crop]), 1);
  const t3 = performance.now();
  stages.detect.push(t1 - t0);
  stages.align.push(t2 - t1);
  stages.embed.push(t3 - t2);
  stages.total.push(t3 - t0);
  return pixels;
}

/** The same image through the services, with each service's own time (decoding included, as above). */
async function meshImage(pipeline: FacePipeline, bytes: Uint8Array, stages: Stages): Promise<void> {
  const t0 = performance.now();
  const result = await pipeline.embedImage(bytes, { choice: 'central' });
  stages.total.push(performance.now() - t0);
  const serviceMs = (service: string) => result.timings.filter((t) => t.service === service).reduce((sum, t) => sum + durationMs(t.duration!), 0);
  stages.detect.push(serviceMs('detector'));
  stages.align.push(serviceMs('aligner'));
  stages.embed.push(serviceMs('embedder'));
}

/** How long `run` took over `crops` crops, and the CPU it cost this process and process `pid` (when given). */
async function measured(crops: number, pid: number | undefined, run: () => Promise<void>) {
  const [started, ownStart, otherStart] = [performance.now(), ownCpuMs(), processCpuMs(pid)];
  await run();
  const seconds = (performance.now() - started) / 1000;
  const other = processCpuMs(pid);
  return { crops, seconds, ownCpu: ownCpuMs() - ownStart, otherCpu: other === undefined || otherStart === undefined ? undefined : other - otherStart };
}
type Run = Awaited<ReturnType<typeof measured>>;
const sum = (runs: Run[], key: keyof Run) => runs.reduce((total, r) => total + (r[key] ?? Number.NaN), 0);
/** CPU ms per crop over `runs`; undefined where it could not be read. */
const cpuPerCrop = (runs: Run[], key: 'ownCpu' | 'otherCpu') => {
  const perCrop = sum(runs, key) / sum(runs, 'crops');
  return Number.isNaN(perCrop) ? undefined : perCrop;
};

/** Round trips of `call`, `count` times, each after `idleMs` of idleness (0: back to back). */
async function roundTrips(call: () => Promise<unknown>, count: number, idleMs = 0): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    if (idleMs > 0) await sleep(idleMs);
    const started = performance.now();
    await call();
    ms.push(performance.now() - started);
  }
  return ms;
}

/** A bench server (plain-grpc-echo.ts, minimal-embedder.ts) as a process, once it has printed its port. */
async function startBenchServer(file: string): Promise<{ address: string; pid: number | undefined; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, file)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [firstOutput] = (await once(child.stdout, 'data')) as [Buffer];
  return { address: `127.0.0.1:${Number.parseInt(firstOutput.toString(), 10)}`, pid: child.pid, stop: () => void child.kill('SIGTERM') };
}
const asIs = (bytes: Buffer) => bytes;
/** A unary call with raw bytes through a bare grpc-js client. */
const rawCall = (client: Client, path: string, request: Buffer) =>
  new Promise<void>((resolve, reject) => void client.makeUnaryRequest(path, asIs, asIs, request, (error) => (error ? reject(error) : resolve())));

/** plain-grpc-echo.ts as a process, and a warmed-up call to it with an empty request. */
async function startPlainEcho(): Promise<{ call: () => Promise<void>; stop: () => void }> {
  const server = await startBenchServer('plain-grpc-echo.ts');
  const client = new Client(server.address, credentials.createInsecure());
  const call = () => rawCall(client, '/bench.Echo/Echo', Buffer.alloc(0));
  for (let i = 0; i < 20; i++) await call();
  return { call, stop: () => (client.close(), server.stop()) };
}

/** minimal-embedder.ts as a process, and a bare client that sends it a crop's raw bytes. */
async function startMinimalEmbedder(): Promise<{ embed: (pixels: Buffer) => Promise<void>; pid: number | undefined; stop: () => void }> {
  const server = await startBenchServer('minimal-embedder.ts');
  const client = new Client(server.address, credentials.createInsecure(), { 'grpc-node.flow_control_window': DEFAULT_FLOW_CONTROL_WINDOW_BYTES });
  return { embed: (pixels) => rawCall(client, '/bench.MinimalEmbedder/Embed', pixels), pid: server.pid, stop: () => (client.close(), server.stop()) };
}

const direct = newStages();
const mesh = newStages();
const directBatches = Math.max(10, rounds); // 640 crops or more per turn: long enough to smooth out a busy moment
const services = await acquireServices(['detector', 'aligner', 'embedder'], undefined, { FACEPRINT_EMBEDDER_MAX_BATCH: '64' });
const addresses = services.addresses as { detector: string; aligner: string; embedder: string };
const pipeline = new FacePipeline(addresses);
const client = createClient(EmbedderService, addresses.embedder);
const plainEcho = await startPlainEcho();
const minimal = await startMinimalEmbedder();
const directRuns: Run[] = [];
const meshRuns: Run[] = [];
const minimalRuns: Run[] = [];
/** Round trips of empty calls (ms): health checks to the embedder and calls to the bare grpc-js server. */
const emptyCalls = { health: [] as number[], healthAfterIdle: [] as number[], plain: [] as number[], plainAfterIdle: [] as number[], idleMs: 0 };
const twoImages = { oneAfterOther: [] as number[], together: [] as number[] };
const crops: Uint8Array[] = []; // one aligned crop per image, from the direct pipeline
try {
  // Latency at concurrency 1. Direct and mesh take turns round by round, so that both see the
  // machine in the same state (on a shared virtual machine its speed drifts within a minute).
  // Not image by image: ONNX Runtime's threads in this process spin on after each direct run and
  // would slow the services' next call.
  await pipeline.embedImage(images[0]!); // warm the channels
  for (let round = 0; round < rounds; round++) {
    for (const bytes of images) {
      const pixels = await directImage(bytes, direct);
      if (round === 0) crops.push(pixels);
    }
    for (const bytes of images) await meshImage(pipeline, bytes, mesh);
  }
  // A request with two images (a compare, an enrolment): through the pipeline one after the other,
  // and at the same time, as the gateway sends them, taking turns pair by pair.
  for (let i = 0; i + 1 < images.length; i += 2) {
    const pair = [images[i]!, images[i + 1]!];
    let started = performance.now();
    for (const bytes of pair) await pipeline.embedImage(bytes, { choice: 'central' });
    twoImages.oneAfterOther.push(performance.now() - started);
    started = performance.now();
    await Promise.all(pair.map((bytes) => pipeline.embedImage(bytes, { choice: 'central' })));
    twoImages.together.push(performance.now() - started);
  }

  // The fixed price of a call: the round trip of an empty call (a health check) to a service and
  // of a call to a bare grpc-js server (no faceprint code), back to back and after the server has
  // been idle as long as a service is within the pipeline (the p50 of an image, an upper bound).
  const health = createClient(Health, addresses.embedder);
  emptyCalls.health.push(...(await roundTrips(() => health.check({}), mesh.total.length)));
  emptyCalls.plain.push(...(await roundTrips(plainEcho.call, mesh.total.length)));
  emptyCalls.idleMs = Math.round(percentile(mesh.total, 50));
  for (let i = 0; i < Math.min(40, mesh.total.length); i++) {
    emptyCalls.healthAfterIdle.push(...(await roundTrips(() => health.check({}), 1, emptyCalls.idleMs)));
    emptyCalls.plainAfterIdle.push(...(await roundTrips(plainEcho.call, 1, emptyCalls.idleMs)));
  }
  health.close();

  // Throughput: direct batch-64 inference against the embedder and the bare grpc-js embedder, each
  // under 64 concurrent single-crop callers, taking turns as above; each figure is over all of its turns.
  const alignedCrops = crops.map((pixels) => create(AlignedFaceSchema, { pixels, width: template.width, height: template.height, format: PixelFormat.RGB8 }));
  const batchTensor = embedderInput.toTensor(Array.from({ length: 64 }, (_, i) => alignedCrops[i % alignedCrops.length]!));
  const calls = Array.from({ length: 64 * directBatches }, (_, i) => alignedCrops[i % alignedCrops.length]!);
  const embedCalls = (list: typeof calls) => forEachConcurrently(list, 64, async (crop) => void (await client.embed({ faces: [crop] })));
  const minimalCalls = (list: typeof calls) => forEachConcurrently(list, 64, (crop) => minimal.embed(Buffer.from(crop.pixels.buffer, crop.pixels.byteOffset, crop.pixels.byteLength)));
  await embedDirect(batchTensor, 64);
  await embedCalls(calls.slice(0, 64));
  await minimalCalls(calls.slice(0, 64));
  for (let turn = 0; turn < 2; turn++) {
    directRuns.push(await measured(64 * directBatches, undefined, async () => {
      for (let i = 0; i < directBatches; i++) await embedDirect(batchTensor, 64);
    }));
    meshRuns.push(await measured(calls.length, services.pids.embedder, () => embedCalls(calls)));
    minimalRuns.push(await measured(calls.length, minimal.pid, () => minimalCalls(calls)));
  }
} finally {
  client.close();
  pipeline.close();
  plainEcho.stop();
  minimal.stop();
  await services.stop();
  await embedderSession.release();
  await detectorSession.release();
}

/** The embedder alone under the same load with batching off (each crop its own inference). */
async function unbatchedThroughput(crops: Uint8Array[]): Promise<number> {
  const unbatched = await acquireServices(['embedder'], undefined, { FACEPRINT_EMBEDDER_MAX_BATCH: '1' });
  const embedder = createClient(EmbedderService, unbatched.addresses.embedder!);
  try {
    const calls = Array.from({ length: 64 * directBatches }, (_, i) => create(AlignedFaceSchema, { pixels: crops[i % crops.length]!, width: template.width, height: template.height, format: PixelFormat.RGB8 }));
    await forEachConcurrently(calls.slice(0, 64), 64, async (crop) => void (await embedder.embed({ faces: [crop] })));
    const run = await measured(calls.length, undefined, () => forEachConcurrently(calls, 64, async (crop) => void (await embedder.embed({ faces: [crop] }))));
    return run.crops / run.seconds;
  } finally {
    embedder.close();
    await unbatched.stop();
  }
}
const meshThroughputNoBatching = await unbatchedThroughput(crops);

/**
 * What flip averaging in the embedder's graph costs: FaceRecognitionNet built from the same
 * weights with and without it, straight through onnxruntime-node, taking turns on the same crops.
 */
async function flipAverageCost(pixels: Uint8Array[]) {
  const { directory, version } = await locateFaceApiPackage();
  const weights = join(directory, 'model/face_recognition_model-weights_manifest.json');
  const build = async (flipAverage: boolean) => ort.InferenceSession.create(buildFaceRecognitionNet(await readWeights(weights), version, { flipAverage }), { graphOptimizationLevel: 'all' });
  const sessions = { plain: await build(false), flip_averaged: await build(true) };
  const faces = pixels.map((crop) => create(AlignedFaceSchema, { pixels: crop, width: template.width, height: template.height, format: PixelFormat.RGB8 }));
  const run = (session: ort.InferenceSession, tensor: Float32Array, count: number) =>
    session.run({ [embedderInput.name]: new ort.Tensor('float32', tensor, [count, 3, embedderInput.height, embedderInput.width]) });
  const single = faces.map((face) => embedderInput.toTensor([face]));
  const batch = embedderInput.toTensor(Array.from({ length: 64 }, (_, i) => faces[i % faces.length]!));
  const latency = { plain: [] as number[], flip_averaged: [] as number[] };
  const batchSeconds = { plain: 0, flip_averaged: 0 };
  try {
    for (const session of Object.values(sessions)) await run(session, batch, 64);
    for (let round = 0; round < rounds; round++) {
      for (const tensor of single) {
        for (const kind of ['plain', 'flip_averaged'] as const) {
          const started = performance.now();
          await run(sessions[kind], tensor, 1);
          latency[kind].push(performance.now() - started);
        }
      }
    }
    for (let turn = 0; turn < 2; turn++) {
      for (const kind of ['plain', 'flip_averaged'] as const) {
        const started = performance.now();
        for (let i = 0; i < directBatches; i++) await run(sessions[kind], batch, 64);
        batchSeconds[kind] += (performance.now() - started) / 1000;
      }
    }
  } finally {
    await Promise.all(Object.values(sessions).map((session) => session.release()));
  }
  const throughput = (kind: 'plain' | 'flip_averaged') => (2 * directBatches * 64) / batchSeconds[kind];
  return {
    batch1_p50_ms: { plain: percentile(latency.plain, 50), flip_averaged: percentile(latency.flip_averaged, 50) },
    batch64_throughput: { plain: throughput('plain'), flip_averaged: throughput('flip_averaged') },
    throughput_ratio: throughput('flip_averaged') / throughput('plain'),
  };
}
const flipCost = await flipAverageCost(crops);

/** The presentation-attack check of one frame: through the mesh as the gateway makes it, and the model alone. */
async function padCheckCost() {
  const name = 'pad-bench-untrained';
  const root = registryRootFromEnv(process.env);
  const registry = new ModelRegistry(root);
  const model = buildColourTextureGraph(PAD_CROP_SIZE, { weights: new Float32Array(FEATURE_LENGTH), bias: 0 }, { producerName: 'faceprint-bench', producerVersion: '0' });
  const { manifest } = await registry.publish({
    name,
    model,
    manifest: {
      ...colourTextureManifestFields(),
      license: 'Apache-2.0',
      source: { kind: 'trained', locator: 'bench/vision.ts (untrained head)' },
      padOperatingPoints: [{ targetBpcer: 0.05, threshold: 0.5 }],
    },
  });
  await registry.promote(name, manifest.model!.version);
  const padServices = await acquireServices(['detector', 'aligner', 'liveness'], undefined, { FACEPRINT_LIVENESS_MODEL: name });
  const { detector, aligner, liveness: livenessAddress } = padServices.addresses as { detector: string; aligner: string; liveness: string };
  const clients = new FacePipeline({ detector, aligner, embedder: detector });
  const liveness = createClient(LivenessService, livenessAddress);
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
  const throughMesh: number[] = [];
  const alone: number[] = [];
  try {
    const detected = await Promise.all(
      images.map(async (content) => {
        const found = await clients.detector.detect({ image: { content } });
        return { content, face: chooseFace(found.faces, 'largest', found.image!)! };
      }),
    );
    const tensor = new Float32Array(3 * PAD_CROP_SIZE * PAD_CROP_SIZE);
    for (let round = 0; round < rounds + 1; round++) {
      for (const { content, face } of detected) {
        const started = performance.now();
        const { serving } = await liveness.modelStatus({});
        const aligned = await clients.aligner.align({ image: { content }, faces: [{ five: face.landmarks }], target: { case: 'model', value: serving! } });
        await liveness.assess({ frames: [aligned.faces[0]!.face!], model: serving });
        if (round > 0) throughMesh.push(performance.now() - started); // round 0 warms the channels
        const direct = performance.now();
        await session.run({ [PAD_INPUT]: new ort.Tensor('float32', tensor, [1, 3, PAD_CROP_SIZE, PAD_CROP_SIZE]) });
        if (round > 0) alone.push(performance.now() - direct);
      }
    }
  } finally {
    liveness.close();
    clients.close();
    await session.release();
    await padServices.stop();
    await rm(join(root, name), { recursive: true, force: true });
  }
  return { mesh_p50_ms: percentile(throughMesh, 50), mesh_p99_ms: percentile(throughMesh, 99), model_alone_p50_ms: percentile(alone, 50) };
}
const padCost = await padCheckCost();
const directThroughput = sum(directRuns, 'crops') / sum(directRuns, 'seconds');
const meshThroughput = sum(meshRuns, 'crops') / sum(meshRuns, 'seconds');
const minimalThroughput = sum(minimalRuns, 'crops') / sum(minimalRuns, 'seconds');

const report = {
  images: images.length,
  rounds,
  cores: os.availableParallelism(),
  mesh_p50_ms: percentile(mesh.total, 50),
  mesh_p99_ms: percentile(mesh.total, 99),
  direct_p50_ms: percentile(direct.total, 50),
  direct_p99_ms: percentile(direct.total, 99),
  overhead_ratio: percentile(mesh.total, 50) / percentile(direct.total, 50),
  // Per image: end to end minus the three services' own times, i.e. what the calls cost outside their handlers.
  outside_handlers_p50_ms: percentile(mesh.total.map((total, i) => total - mesh.detect[i]! - mesh.align[i]! - mesh.embed[i]!), 50),
  empty_call_p50_ms: percentile(emptyCalls.health, 50),
  empty_call_after_idle_p50_ms: percentile(emptyCalls.healthAfterIdle, 50),
  plain_grpc_call_p50_ms: { back_to_back: percentile(emptyCalls.plain, 50), after_idle: percentile(emptyCalls.plainAfterIdle, 50) },
  idle_ms: emptyCalls.idleMs,
  two_images_p50_ms: { one_after_other: percentile(twoImages.oneAfterOther, 50), together: percentile(twoImages.together, 50) },
  stages_mesh_ms: { detect: summary(mesh.detect), align: summary(mesh.align), embed: summary(mesh.embed) },
  stages_direct_ms: { detect: summary(direct.detect), align: summary(direct.align), embed: summary(direct.embed) },
  mesh_throughput: meshThroughput,
  mesh_throughput_no_batching: meshThroughputNoBatching,
  direct_throughput: directThroughput,
  throughput_ratio: meshThroughput / directThroughput,
  // A grpc-js embedder's ceiling on this machine: minimal-embedder.ts under the same load, from a bare client.
  minimal_grpc_throughput: minimalThroughput,
  minimal_grpc_throughput_ratio: minimalThroughput / directThroughput,
  // FaceRecognitionNet with and without flip averaging in its graph, direct (the registry's default has it).
  flip_average_cost: flipCost,
  // What a payment verify's presentation-attack check adds (one frame): the gateway's three calls through the mesh, and the model alone.
  pad_check: { ...padCost, share_of_verify_pipeline: padCost.mesh_p50_ms / percentile(mesh.total, 50) },
  cpu_ms_per_crop: {
    direct: cpuPerCrop(directRuns, 'ownCpu'),
    mesh_embedder: cpuPerCrop(meshRuns, 'otherCpu'),
    mesh_caller: cpuPerCrop(meshRuns, 'ownCpu'),
    minimal_grpc_embedder: cpuPerCrop(minimalRuns, 'otherCpu'),
    minimal_grpc_caller: cpuPerCrop(minimalRuns, 'ownCpu'),
  },
  units:
    'latency in ms per image (concurrency 1); throughput in crops per second (concurrency 64 for the mesh, batch 64 direct); ' +
    'CPU in ms per crop over all threads during the throughput runs (mesh: the embedder process and the calling process; Linux /proc for the embedder)',
};
if (values.json) {
  process.stdout.write(`${JSON.stringify(report)}\n`);
} else {
  const f = (v: number) => v.toFixed(1);
  log(`vision pipeline, ${images.length} images x ${rounds} rounds`);
  log(`latency (c=1)   mesh p50 ${f(report.mesh_p50_ms)} ms, p99 ${f(report.mesh_p99_ms)} ms | direct p50 ${f(report.direct_p50_ms)} ms, p99 ${f(report.direct_p99_ms)} ms | ratio ${report.overhead_ratio.toFixed(2)}`);
  for (const stage of ['detect', 'align', 'embed'] as const) {
    log(`  ${stage.padEnd(6)} mesh p50 ${f(report.stages_mesh_ms[stage].p50)} ms | direct p50 ${f(report.stages_direct_ms[stage].p50)} ms`);
  }
  log(`  two images through the mesh p50: one after the other ${f(report.two_images_p50_ms.one_after_other)} ms, at the same time ${f(report.two_images_p50_ms.together)} ms`);
  const f2 = (v: number) => v.toFixed(2);
  log(`  outside the handlers p50 ${f(report.outside_handlers_p50_ms)} ms per image (3 calls)`);
  log(`  an empty call p50: health check ${f2(report.empty_call_p50_ms)} ms back to back, ${f2(report.empty_call_after_idle_p50_ms)} ms after ${report.idle_ms} ms idle`);
  log(`                     bare grpc-js  ${f2(report.plain_grpc_call_p50_ms.back_to_back)} ms back to back, ${f2(report.plain_grpc_call_p50_ms.after_idle)} ms after ${report.idle_ms} ms idle`);
  log(`embedder throughput: mesh c=64 ${f(report.mesh_throughput)}/s (batching off: ${f(report.mesh_throughput_no_batching)}/s) | direct batch-64 ${f(report.direct_throughput)}/s | ratio ${report.throughput_ratio.toFixed(2)}`);
  log(`  a bare grpc-js embedder c=64 ${f(report.minimal_grpc_throughput)}/s | ratio to direct ${report.minimal_grpc_throughput_ratio.toFixed(2)} (gRPC, preprocessing and inference only: a grpc-js embedder's ceiling here)`);
  const cpu = report.cpu_ms_per_crop;
  const ms = (v: number | undefined) => (v === undefined ? 'n/a' : `${v.toFixed(2)} ms`);
  const flip = report.flip_average_cost;
  log(`flip averaging (direct): batch 1 p50 ${f(flip.batch1_p50_ms.flip_averaged)} ms vs ${f(flip.batch1_p50_ms.plain)} ms without | batch 64 ${f(flip.batch64_throughput.flip_averaged)}/s vs ${f(flip.batch64_throughput.plain)}/s | ratio ${flip.throughput_ratio.toFixed(2)}`);
  const pad = report.pad_check;
  log(`PAD check (1 frame): through the mesh p50 ${f(pad.mesh_p50_ms)} ms, p99 ${f(pad.mesh_p99_ms)} ms (status + align + assess; ${(100 * pad.share_of_verify_pipeline).toFixed(0)}% of the pipeline's p50) | model alone p50 ${f(pad.model_alone_p50_ms)} ms`);
  log(`CPU per crop:        mesh embedder ${ms(cpu.mesh_embedder)} + caller ${ms(cpu.mesh_caller)} | bare grpc-js embedder ${ms(cpu.minimal_grpc_embedder)} + caller ${ms(cpu.minimal_grpc_caller)} | direct ${ms(cpu.direct)} (${report.cores} cores)`);
}
