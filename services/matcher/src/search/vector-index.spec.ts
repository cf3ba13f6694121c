import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nearby, randomUnitVector, seededRandom } from '../test-support.js';
import { AdaptivePartition, ExactPartition, VectorIndex } from './vector-index.js';

const random = seededRandom(3);
const pack = (vectors: Float32Array[]) => {
  const packed = new Float32Array(vectors.length * vectors[0]!.length);
  vectors.forEach((v, i) => packed.set(v, i * v.length));
  return packed;
};

describe('vector index', () => {
  it('searches exactly: best first, cosine scores, removed keys gone', () => {
    const vectors = Array.from({ length: 50 }, () => randomUnitVector(random, 16));
    const partition = new ExactPartition(16, 4); // grows past its first capacity
    partition.add(vectors.map((_, i) => BigInt(i + 1)), pack(vectors));
    const hits = partition.search(vectors[7]!, 3);
    assert.equal(hits.keys[0], 8n);
    assert.ok(Math.abs(hits.scores[0]! - 1) < 1e-5);
    assert.ok(hits.scores[0]! >= hits.scores[1]! && hits.scores[1]! >= hits.scores[2]!);
    partition.remove([8n, 999n]);
    assert.equal(partition.size, 49);
    assert.notEqual(partition.search(vectors[7]!, 1).keys[0], 8n);
    // The vector moved into the freed slot is still found under its own key.
    assert.equal(partition.search(vectors[49]!, 1).keys[0], 50n);
  });

  it('moves to HNSW at its limit, keeping changes made while the graph is built', async () => {
    const vectors = Array.from({ length: 3000 }, () => randomUnitVector(random, 32));
    const partition = new AdaptivePartition(32, 2500);
    partition.add(vectors.map((_, i) => BigInt(i + 1)), pack(vectors));
    assert.equal(partition.mode, 'exact', 'the graph is built in the background');
    partition.remove([1n]);
    const late = randomUnitVector(random, 32);
    partition.add([5000n], late);
    await partition.settled();
    assert.equal(partition.mode, 'hnsw');
    assert.equal(partition.size, 3000);
    assert.notEqual(partition.search(vectors[0]!, 1).keys[0], 1n, 'removed during the build');
    assert.equal(partition.search(late, 1).keys[0], 5000n, 'added during the build');
    for (let i = 1; i < 3000; i += 37) assert.equal(partition.search(nearby(vectors[i]!, random, 0.02), 1).keys[0], BigInt(i + 1));
  });

  it('builds small HNSW graphs that reach every vector, build after build', async () => {
    // A graph built with racing inserts lost a vector in about one build in four at this size.
    for (let build = 0; build < 40; build++) {
      const vectors = Array.from({ length: 120 }, () => randomUnitVector(random, 128));
      const partition = new AdaptivePartition(128, 50);
      partition.add(vectors.slice(0, 60).map((_, i) => BigInt(i + 1)), pack(vectors.slice(0, 60)));
      await partition.settled();
      vectors.slice(60).forEach((v, i) => partition.add([BigInt(61 + i)], v));
      assert.equal(partition.mode, 'hnsw');
      vectors.forEach((v, i) => assert.equal(partition.search(nearby(v, random, 0.03), 12).keys[0], BigInt(i + 1), `build ${build}, vector ${i}`));
    }
  });

  it('keeps tenants and model versions in separate partitions', () => {
    const index = new VectorIndex(100);
    const v = randomUnitVector(random, 8);
    index.add({ tenantId: 'a', modelName: 'm', modelVersion: 1 }, 8, [1n], v);
    assert.ok(index.partition({ tenantId: 'a', modelName: 'm', modelVersion: 1 }));
    assert.equal(index.partition({ tenantId: 'b', modelName: 'm', modelVersion: 1 }), undefined);
    assert.equal(index.partition({ tenantId: 'a', modelName: 'm', modelVersion: 2 }), undefined);
    index.remove({ tenantId: 'a', modelName: 'm', modelVersion: 1 }, [1n]);
    assert.equal(index.size, 0);
  });
});
