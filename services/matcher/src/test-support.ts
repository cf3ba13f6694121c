/**
 * Test support for the matcher's specs and benchmark: a model registry of small embedding-model
 * manifests with calibrated thresholds, deterministic unit vectors, and a matcher started
 * in-process on a loopback port.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { encodeEmbedding, perComparisonRates, sameRate } from '@faceprint/contracts';
import { ConsentSchema, EmbeddingSchema, LegalBasis, type Consent, type Embedding, type ModelRef } from '@faceprint/contracts/common';
import { normalise } from '@faceprint/face-pipeline';
import { ComplianceService, MatcherService } from '@faceprint/contracts/matcher';
import { ModelTask } from '@faceprint/contracts/trainer';
import { ModelRegistry } from '@faceprint/model-registry';
import { createClient, loadServerConfig, startServer, type ServiceClient } from '@faceprint/service-kit';
import { createLogger } from '@faceprint/telemetry';
import { loadMatcherConfig } from './matcher-config.js';
import { matcherService } from './matcher-service.js';

/** Thresholds of the test models (fixtures, not measurements): FAR → cosine threshold. */
export const TEST_THRESHOLDS = { 1e-3: 0.5, 1e-4: 0.6, 1e-5: 0.7 } as const;

/** The fixture's threshold for any rate: 0.1 higher per decade below 1e-3, as TEST_THRESHOLDS. */
export const testThresholdFor = (far: number) => 0.5 + 0.1 * Math.log10(1e-3 / far);

/** The test models' calibration: TEST_THRESHOLDS, and the per-comparison rates far / k that let a decision fuse up to 10 templates. */
const testCalibration = () => {
  const decision = Object.keys(TEST_THRESHOLDS).map(Number);
  return perComparisonRates(decision).map((far) => ({ far, threshold: Math.fround(testThresholdFor(far)), dataset: 'test-fixture', perComparison: !decision.some((d) => sameRate(d, far)) }));
};

/** The test models' refs, filled in by {@link testEmbedderRegistry}. */
export interface TestModels {
  readonly root: string;
  /** `test-embedder` v1: 128-D, calibrated. */
  readonly v1: ModelRef;
  /** `test-embedder` v2: 128-D, calibrated (a "new model version" for migrations). */
  readonly v2: ModelRef;
  /** `uncalibrated` v1: 128-D, no thresholds. */
  readonly uncalibrated: ModelRef;
}

/**
 * A registry of embedding-model versions for matcher tests. The matcher reads only manifests
 * (dimension, sha256, thresholds), so the model files are placeholder bytes.
 */
export async function testEmbedderRegistry(): Promise<TestModels> {
  const root = await mkdtemp(join(tmpdir(), 'faceprint-matcher-models-'));
  const registry = new ModelRegistry(root);
  const publish = async (name: string, bytes: string, calibrated: boolean) => {
    const { manifest } = await registry.publish({
      name,
      model: new TextEncoder().encode(bytes),
      manifest: {
        task: ModelTask.EMBEDDER,
        embeddingDim: 128,
        description: 'A placeholder embedding model for matcher tests.',
        thresholds: calibrated ? testCalibration() : [],
      },
    });
    return manifest.model!;
  };
  return {
    root,
    v1: await publish('test-embedder', 'version one', true),
    v2: await publish('test-embedder', 'version two', true),
    uncalibrated: await publish('uncalibrated', 'no thresholds', false),
  };
}

/** A deterministic pseudo-random generator (mulberry32), so that failures reproduce. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random unit vector of `dim` (Gaussian coordinates, normalised). */
export function randomUnitVector(random: () => number, dim = 128): Float32Array {
  const vector = new Float32Array(dim);
  for (let i = 0; i < dim; i++) vector[i] = Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  return normalise(vector);
}

/** `vector` moved by Gaussian noise of `sigma` per coordinate, renormalised: "the same face again". */
export function nearby(vector: Float32Array, random: () => number, sigma: number): Float32Array {
  const noise = randomUnitVector(random, vector.length);
  const moved = new Float32Array(vector.length);
  const scale = sigma * Math.sqrt(vector.length);
  for (let i = 0; i < vector.length; i++) moved[i] = vector[i]! + scale * noise[i]!;
  return normalise(moved);
}

/** An Embedding message of `vector` made by `model`. */
export function embedding(vector: Float32Array, model: ModelRef): Embedding {
  return create(EmbeddingSchema, { vector: encodeEmbedding(vector), dim: vector.length, model });
}

/** A valid explicit-consent record given now for `purpose`. */
export function consent(purpose = 'access_control'): Consent {
  return create(ConsentSchema, {
    legalBasis: LegalBasis.EXPLICIT_CONSENT,
    purpose,
    givenAt: timestampFromDate(new Date()),
    collectionPoint: 'test-suite',
    retentionDays: 365,
    evidenceRef: 'notice-v1',
  });
}

/** A matcher running in this process. */
export interface InProcessMatcher {
  readonly address: string;
  readonly matcher: ServiceClient<typeof MatcherService>;
  readonly compliance: ServiceClient<typeof ComplianceService>;
  close(): Promise<void>;
}

/** Starts a matcher in this process with `env` (its settings), ready to serve; `onLog` gets each line it logs at info and above. */
export async function startInProcessMatcher(env: Record<string, string>, onLog?: (line: Record<string, unknown>) => void): Promise<InProcessMatcher> {
  const destination = onLog && new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) onLog(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = createLogger({ service: 'matcher', level: onLog ? 'info' : 'silent', destination });
  const setup = matcherService(loadMatcherConfig(env), { log });
  const server = await startServer({ config: loadServerConfig('matcher', { FACEPRINT_GRPC_PORT: '0', FACEPRINT_METRICS_PORT: '0' }), log, services: setup.services });
  try {
    await setup.ready!();
  } catch (error) {
    await server.shutdown();
    throw error;
  }
  server.setServing(true);
  const matcher = createClient(MatcherService, server.address, { retry: false });
  const compliance = createClient(ComplianceService, server.address, { retry: false });
  return {
    address: server.address,
    matcher,
    compliance,
    close: async () => {
      matcher.close();
      compliance.close();
      await server.shutdown();
      await setup.close!();
    },
  };
}
