import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MODEL_MIRROR, skipUnlessPresent, testModelRegistry } from '@faceprint/testing';
import { startLocalMesh } from './local-mesh.js';

/** The service processes this process has started and that still run. */
const serviceChildren = () =>
  execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes('src/main.ts'));

describe('startLocalMesh', { skip: skipUnlessPresent(MODEL_MIRROR) }, () => {
  it('leaves no service process behind when one fails to start', async () => {
    const saved = { ...process.env };
    // The services inherit this environment: an invalid detector setting makes the detector exit at once.
    Object.assign(process.env, { FACEPRINT_MODEL_REGISTRY: await testModelRegistry(), FACEPRINT_DETECTOR_INPUT_SIZE: '7' });
    try {
      await assert.rejects(startLocalMesh({ ports: 'free' }), /detector exited/);
      for (let i = 0; i < 50 && serviceChildren().length > 0; i++) await sleep(100); // stop() waited; allow the exits to be reaped
      assert.deepEqual(serviceChildren(), []);
    } finally {
      process.env = saved;
      // A leftover would keep this test process alive: end it, so that a regression fails instead of hanging.
      for (const line of serviceChildren()) process.kill(Number.parseInt(line, 10), 'SIGKILL');
    }
  });
});
