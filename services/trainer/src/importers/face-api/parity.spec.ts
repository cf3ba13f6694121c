/**
 * The converted ONNX nets against face-api.js's own forward pass (TF.js, CPU backend) on real
 * face crops: the outputs must agree within 1e-4. The flip-averaged build against the plain one
 * run on the crop and on its mirror image.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { IDENTITIES_DIR, skipUnlessPresent } from '@faceprint/testing';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { buildFaceLandmark68Net } from './face-landmark-68-net.js';
import { buildFaceRecognitionNet, FACE_RECOGNITION_MEAN_RGB } from './face-recognition-net.js';
import { locateFaceApiPackage } from './importers.js';
import { readWeights } from './weights.js';

interface FaceApiNet {
  loadFromWeightMap(weights: unknown): void;
}
interface FaceApi {
  tf: {
    setBackend(name: string): Promise<boolean>;
    ready(): Promise<void>;
    tensor4d(values: Float32Array, shape: number[]): unknown;
    io: { decodeWeights(buffer: ArrayBuffer, specs: unknown): unknown };
  };
  nets: { faceRecognitionNet: FaceApiNet & { forwardInput(input: unknown): { data(): Promise<Float32Array> } }; faceLandmark68Net: FaceApiNet & { runNet(input: unknown): { data(): Promise<Float32Array> } } };
  toNetInput(input: unknown): Promise<unknown>;
}

// face-api.js's Node build for the WASM/CPU backends (its tfjs-node build does not install here).
const faceapi = createRequire(import.meta.url)('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;

const CROPS = ['amy/amy1.png', 'howard/howard3.png', 'penny/penny2.png', 'raj/raj5.png'];
const TOLERANCE = 1e-4;

/** A crop as interleaved RGB 0..255 at `size` x `size`. */
async function rgbCrop(file: string, size: number): Promise<Float32Array> {
  const { data } = await sharp(join(IDENTITIES_DIR, file)).removeAlpha().toColourspace('srgb').resize(size, size).raw().toBuffer({ resolveWithObject: true });
  return new Float32Array(data);
}

/** The same crop as the ONNX input: NCHW, (pixel - mean) / 255. */
function onnxInput(rgb: Float32Array, size: number): ort.Tensor {
  const chw = new Float32Array(rgb.length);
  const plane = size * size;
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) chw[c * plane + i] = (rgb[i * 3 + c]! - FACE_RECOGNITION_MEAN_RGB[c]!) / 255;
  return new ort.Tensor('float32', chw, [1, 3, size, size]);
}

async function loadFaceApiNet(net: FaceApiNet, directory: string, manifestFile: string): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const [group] = JSON.parse(await readFile(join(directory, 'model', manifestFile), 'utf8')) as [{ paths: string[]; weights: unknown }];
  const shard = await readFile(join(directory, 'model', group.paths[0]!));
  net.loadFromWeightMap(faceapi.tf.io.decodeWeights(new Uint8Array(shard).buffer, group.weights));
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('face-api.js nets converted to ONNX', { skip: skipUnlessPresent(IDENTITIES_DIR) }, () => {
  let recognition: ort.InferenceSession;
  let flipAveraged: ort.InferenceSession;
  let landmarks: ort.InferenceSession;
  before(async () => {
    await faceapi.tf.setBackend('cpu');
    await faceapi.tf.ready();
    const { directory } = await locateFaceApiPackage();
    await loadFaceApiNet(faceapi.nets.faceRecognitionNet, directory, 'face_recognition_model-weights_manifest.json');
    await loadFaceApiNet(faceapi.nets.faceLandmark68Net, directory, 'face_landmark_68_model-weights_manifest.json');
    const recognitionWeights = join(directory, 'model/face_recognition_model-weights_manifest.json');
    recognition = await ort.InferenceSession.create(buildFaceRecognitionNet(await readWeights(recognitionWeights), 'test'));
    flipAveraged = await ort.InferenceSession.create(buildFaceRecognitionNet(await readWeights(recognitionWeights), 'test', { flipAverage: true }));
    landmarks = await ort.InferenceSession.create(buildFaceLandmark68Net(await readWeights(join(directory, 'model/face_landmark_68_model-weights_manifest.json')), 'test'));
  });

  for (const crop of CROPS) {
    it(`FaceRecognitionNet embeddings match within ${TOLERANCE} on ${crop}`, async () => {
      const rgb = await rgbCrop(crop, 150);
      const reference = await faceapi.nets.faceRecognitionNet.forwardInput(await faceapi.toNetInput(faceapi.tf.tensor4d(rgb, [1, 150, 150, 3]))).data();
      const { embedding } = await recognition.run({ image: onnxInput(rgb, 150) });
      const difference = maxAbsDifference(embedding!.data as Float32Array, reference);
      assert.ok(difference <= TOLERANCE, `max |difference| ${difference}`);
    });

    it(`FaceLandmark68Net landmarks match within ${TOLERANCE} on ${crop}`, async () => {
      const rgb = await rgbCrop(crop, 112);
      const reference = await faceapi.nets.faceLandmark68Net.runNet(await faceapi.toNetInput(faceapi.tf.tensor4d(rgb, [1, 112, 112, 3]))).data();
      const { landmarks: points } = await landmarks.run({ image: onnxInput(rgb, 112) });
      const difference = maxAbsDifference(points!.data as Float32Array, reference);
      assert.ok(difference <= TOLERANCE, `max |difference| ${difference}`);
    });
  }

  it('the flip-averaged build gives, per crop of a batch, the sum of the unit embeddings of the crop and its mirror image', async () => {
    const unit = (v: Float32Array) => v.map((x) => x / Math.hypot(...v));
    const crops = await Promise.all(['amy/amy1.png', 'raj/raj5.png'].map((crop) => rgbCrop(crop, 150)));
    const mirrored = crops.map((rgb) => {
      const out = new Float32Array(rgb.length);
      for (let y = 0; y < 150; y++) for (let x = 0; x < 150; x++) out.set(rgb.subarray((y * 150 + x) * 3, (y * 150 + x) * 3 + 3), (y * 150 + 149 - x) * 3);
      return out;
    });
    const plain = async (rgb: Float32Array) => unit((await recognition.run({ image: onnxInput(rgb, 150) })).embedding!.data as Float32Array);
    const batch = new Float32Array(2 * 3 * 150 * 150);
    crops.forEach((rgb, n) => batch.set(onnxInput(rgb, 150).data as Float32Array, n * 3 * 150 * 150));
    const { embedding } = await flipAveraged.run({ image: new ort.Tensor('float32', batch, [2, 3, 150, 150]) });
    assert.deepEqual(embedding!.dims, [2, 128]);
    for (let n = 0; n < 2; n++) {
      const [original, mirror] = [await plain(crops[n]!), await plain(mirrored[n]!)];
      const expected = original.map((v, i) => v + mirror[i]!);
      const difference = maxAbsDifference((embedding!.data as Float32Array).subarray(n * 128, (n + 1) * 128), expected);
      assert.ok(difference <= TOLERANCE, `crop ${n}: max |difference| ${difference}`);
      assert.ok(maxAbsDifference(original, mirror) > 0.01, 'the mirror image embeds differently, so the test can fail');
    }
  });

  it('embeds two crops of one person closer than crops of two people', async () => {
    const embed = async (crop: string) => {
      const { embedding } = await recognition.run({ image: onnxInput(await rgbCrop(crop, 150), 150) });
      return embedding!.data as Float32Array;
    };
    const distance = (a: Float32Array, b: Float32Array) => Math.hypot(...a.map((v, i) => v - b[i]!));
    const [amy1, amy2, raj1] = await Promise.all([embed('amy/amy1.png'), embed('amy/amy2.png'), embed('raj/raj1.png')]);
    assert.ok(distance(amy1, amy2) < distance(amy1, raj1), `same ${distance(amy1, amy2)} vs different ${distance(amy1, raj1)}`);
  });
});
