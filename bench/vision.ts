/**
 * `npm run bench:vision [-- --json]`: the vision pipeline through the mesh (detector, aligner and
 * embedder processes over gRPC on loopback) against the same models and code called directly
 * through onnxruntime-node in this process, on the same images in the same run.
 *
 * - Latency at concurrency 1: end-to-end p50/p99 per image, per stage, and the mesh/direct ratio.
 * - Embedder throughput at concurrency 64 (single-crop calls), with batching on and off, against
 *   direct batch-64 inference: the ratio says what the service layer costs under load.
 * Figures are printed, never asserted: this is a benchmark, not a test.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { AlignedFaceSchema, PixelFormat } from '@faceprint/contracts/common';
import { acquireServices, forEachConcurrently } from '@faceprint/mesh';
import { FacePipeline } from '@faceprint/face-pipeline';
import { decodeImage } from '@faceprint/imaging';
import { ModelRegistry, registryRootFromEnv } from '@faceprint/model-registry';
import { imageInputOf } from '@faceprint/onnx';
import { EmbedderService } from '@faceprint/contracts/embedder';
import { createClient, durationMs } from '@faceprint/service-kit';
import * as ort from 'onnxruntime-node';
import { fitSimilarity, warp } from '../services/aligner/src/similarity.js';
import { detectFaces } from '../services/detector/src/yunet.js';

const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, images: { type: 'string' }, rounds: { type: 'string', default: '3' } } });
const log = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
const imagesDir = values.images ?? join(import.meta.dirname, '../../shared/models/test-images/identities');
const files = (await readdir(imagesDir, { recursive: true })).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => join(imagesDir, f));
const images = await Promise.all(files.map((f) => readFile(f)));
const rounds = Number(values.rounds);

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const summary = (ms: number[]) => ({ p50: percentile(ms, 50), p99: percentile(ms, 99) });

// ---- direct: the services' own code and models in this process ----
const registry = new ModelRegistry(registryRootFromEnv(process.env));
const detectorModel = await registry.loadModel('yunet-n');
const detectorSession = await ort.InferenceSession.create(detectorModel.bytes, { graphOptimizationLevel: 'all' });
// The embedding model straight through onnxruntime-node on this thread (ORT's own defaults): the baseline the service is held to.
const embedderModel = await registry.loadModel('face-recognition-net');
const embedderInput = imageInputOf(embedderModel.manifest);
const embedderSession = await ort.InferenceSession.create(embedderModel.bytes, { graphOptimizationLevel: 'all' });
const embedDirect = (tensor: Float32Array, count: number) =>
  embedderSession.run({ [embedderInput.name]: new ort.Tensor('float32', tensor, [count, 3, embedderInput.height, embedderInput.width]) });
const template = embedderModel.manifest.alignment!;
const target = template.points.map((p) => [p.x, p.y] as const);
const detectSettings = { inputSize: 640, scoreThreshold: 0.6, nmsIou: 0.3, minFaceSize: 0, maxFaces: 1000, smallImagePadding: 0.5 };

const direct = { total: [] as number[], detect: [] as number[], align: [] as number[], embed: [] as number[] };
const crops: Uint8Array[] = [];
for (let round = 0; round < rounds; round++) {
  for (const bytes of images) {
    const t0 = performance.now();
    const image = await decodeImage(bytes);
    const [face] = await detectFaces(detectorSession, ort.Tensor, image, detectSettings);
    const t1 = performance.now();
    const decodedAgain = await decodeImage(bytes); // the aligner decodes the image too
    const pixels = warp(decodedAgain, fitSimilarity(face!.landmarks, target), template.width, template.height);
    const t2 = performance.now();
    const crop = create(AlignedFaceSchema, { pixels, width: template.width, height: template.height, format: PixelFormat.RGB8 });
    await embedDirect(embedderInput.toTensor([crop]), 1);
    const t3 = performance.now();
    direct.detect.push(t1 - t0);
    direct.align.push(t2 - t1);
    direct.embed.push(t3 - t2);
    direct.total.push(t3 - t0);
    if (round === 0) crops.push(pixels);
  }
}
// Direct batch-64 embedding throughput.
const alignedCrops = crops.map((pixels) => create(AlignedFaceSchema, { pixels, width: template.width, height: template.height, format: PixelFormat.RGB8 }));
const batch = Array.from({ length: 64 }, (_, i) => alignedCrops[i % alignedCrops.length]!);
const batchTensor = embedderInput.toTensor(batch);
await embedDirect(batchTensor, 64);
const directStart = performance.now();
const directBatches = Math.max(10, rounds); // 640 crops or more each way: long enough to smooth out a busy moment
for (let i = 0; i < directBatches; i++) await embedDirect(batchTensor, 64);
const directThroughput = (64 * directBatches) / ((performance.now() - directStart) / 1000);
await embedderSession.release();
await detectorSession.release();

// ---- mesh: the same images through the services over gRPC ----
async function meshRun(maxBatch: number) {
  const services = await acquireServices(['detector', 'aligner', 'embedder'], undefined, { FACEPRINT_EMBEDDER_MAX_BATCH: String(maxBatch) });
  const addresses = services.addresses as { detector: string; aligner: string; embedder: string };
  const pipeline = new FacePipeline(addresses);
  const stages = { total: [] as number[], detect: [] as number[], align: [] as number[], embed: [] as number[] };
  try {
    await pipeline.embedImage(images[0]!); // warm the channels
    for (let round = 0; round < rounds; round++) {
      for (const bytes of images) {
        const t0 = performance.now();
        const result = await pipeline.embedImage(bytes, { choice: 'central' });
        stages.total.push(performance.now() - t0);
        // Per service, decoding included, as the direct stages measure them.
        const serviceMs = (service: string) => result.timings.filter((t) => t.service === service).reduce((sum, t) => sum + durationMs(t.duration!), 0);
        stages.detect.push(serviceMs('detector'));
        stages.align.push(serviceMs('aligner'));
        stages.embed.push(serviceMs('embedder'));
      }
    }
    // Embedder throughput at concurrency 64, single-crop calls.
    const client = createClient(EmbedderService, addresses.embedder);
    const calls = Array.from({ length: 64 * directBatches }, (_, i) => alignedCrops[i % alignedCrops.length]!);
    await forEachConcurrently(calls.slice(0, 64), 64, async (crop) => void (await client.embed({ faces: [crop] })));
    const start = performance.now();
    await forEachConcurrently(calls, 64, async (crop) => void (await client.embed({ faces: [crop] })));
    const throughput = calls.length / ((performance.now() - start) / 1000);
    client.close();
    return { stages, throughput };
  } finally {
    pipeline.close();
    await services.stop();
  }
}

const batched = await meshRun(64);
const unbatched = await meshRun(1);

const report = {
  images: images.length,
  rounds,
  mesh_p50_ms: percentile(batched.stages.total, 50),
  mesh_p99_ms: percentile(batched.stages.total, 99),
  direct_p50_ms: percentile(direct.total, 50),
  direct_p99_ms: percentile(direct.total, 99),
  overhead_ratio: percentile(batched.stages.total, 50) / percentile(direct.total, 50),
  stages_mesh_ms: { detect: summary(batched.stages.detect), align: summary(batched.stages.align), embed: summary(batched.stages.embed) },
  stages_direct_ms: { detect: summary(direct.detect), align: summary(direct.align), embed: summary(direct.embed) },
  mesh_throughput: batched.throughput,
  mesh_throughput_no_batching: unbatched.throughput,
  direct_throughput: directThroughput,
  throughput_ratio: batched.throughput / directThroughput,
  units: 'latency in ms per image (concurrency 1); throughput in crops per second (concurrency 64 for the mesh, batch 64 direct)',
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
  log(`embedder throughput: mesh c=64 ${f(report.mesh_throughput)}/s (batching off: ${f(report.mesh_throughput_no_batching)}/s) | direct batch-64 ${f(report.direct_throughput)}/s | ratio ${report.throughput_ratio.toFixed(2)}`);
}
