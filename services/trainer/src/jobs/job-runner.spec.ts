/**
 * The job runner on its own, with small work functions: idempotent starts, one job at a time,
 * progress streamed to the end, cancellation of a running job, and jobs that outlive a restart
 * (one left running is marked failed).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { create } from '@bufbuild/protobuf';
import { JobKind, JobSpecSchema, JobState } from '@faceprint/contracts/trainer';
import { createLogger } from '@faceprint/telemetry';
import { JobRunner, type JobWork } from './job-runner.js';

const log = createLogger({ service: 'trainer', level: 'silent' });
const spec = (dataset: string) => create(JobSpecSchema, { kind: JobKind.EVALUATE, dataset });

/** Work that counts to `steps`, a step every 20 ms, until cancelled. */
const counting =
  (steps: number): JobWork =>
  async (_spec, { signal, progress }) => {
    for (let i = 1; i <= steps && !signal.aborted; i++) {
      await sleep(20);
      progress({ step: BigInt(i), totalSteps: BigInt(steps) });
    }
    return undefined;
  };

describe('job runner', () => {
  const dirs: string[] = [];
  const dir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'faceprint-jobs-'));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('runs jobs one at a time, streams progress to the end, and is idempotent under a request id', async () => {
    const runner = new JobRunner(await dir(), () => counting(5), log);
    await runner.open();
    const first = await runner.start('r1', spec('a'));
    const second = await runner.start('r2', spec('b'));
    assert.equal((await runner.start('r1', spec('a'))).jobId, first.jobId);
    const seen: string[] = [];
    for await (const job of runner.watch(first.jobId, new AbortController().signal)) seen.push(`${JobState[job.state]}:${job.progress?.step ?? 0n}`);
    assert.equal(seen.at(-1), 'SUCCEEDED:5');
    assert.ok(seen.includes('RUNNING:3'), seen.join(' '));
    assert.equal(runner.get(second.jobId)?.state === JobState.RUNNING || runner.get(second.jobId)?.state === JobState.QUEUED, true, 'the second waits for the first');
    await runner.idle();
    assert.deepEqual(runner.list().map((j) => JobState[j.state]), ['SUCCEEDED', 'SUCCEEDED']);
  });

  it('cancels a running job and a queued one; a finished job cancels to itself', async () => {
    const runner = new JobRunner(await dir(), () => counting(1000), log);
    await runner.open();
    const running = await runner.start('long', spec('a'));
    const queued = await runner.start('later', spec('b'));
    await sleep(100);
    assert.equal((await runner.cancel(queued.jobId))?.state, JobState.CANCELLED);
    const cancelled = await runner.cancel(running.jobId);
    assert.equal(cancelled?.state, JobState.CANCELLED);
    assert.ok((cancelled?.progress?.step ?? 0n) < 1000n);
    assert.equal((await runner.cancel(running.jobId))?.state, JobState.CANCELLED);
    await runner.close();
  });

  it('keeps jobs across a restart; one that was running is marked failed', async () => {
    const jobs = await dir();
    const first = new JobRunner(jobs, () => counting(1000), log);
    await first.open();
    const done = await first.start('quick', spec('a'));
    await first.cancel(done.jobId);
    const interrupted = await first.start('interrupted', spec('b'));
    await sleep(100); // running, and saved as running
    // A new process: the first one is gone without finishing its job.
    const second = new JobRunner(jobs, () => counting(1), log);
    await second.open();
    assert.equal(second.get(done.jobId)?.state, JobState.CANCELLED);
    assert.equal(second.get(interrupted.jobId)?.state, JobState.FAILED);
    assert.match(second.get(interrupted.jobId)?.error ?? '', /interrupted/);
    assert.equal((await second.start('interrupted', spec('b'))).jobId, interrupted.jobId, 'its request id is still known');
    await first.close();
  });
});
