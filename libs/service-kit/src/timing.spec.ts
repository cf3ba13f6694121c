import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toBinary } from '@bufbuild/protobuf';
import { StageTimingSchema } from '@faceprint/contracts/common';
import { durationFromMillis, stageTiming } from './timing.js';

describe('timings', () => {
  it('keeps sub-millisecond precision in whole nanoseconds', () => {
    const duration = durationFromMillis(1234.5678);
    assert.equal(duration.seconds, 1n);
    assert.equal(duration.nanos, 234_567_800);
  });

  it('builds a StageTiming that serialises (fractional nanos would not)', () => {
    const timing = stageTiming('detect', 'detector', performance.now() - 3.25);
    assert.ok(Number.isInteger(timing.duration!.nanos));
    assert.ok(toBinary(StageTimingSchema, timing).byteLength > 0);
  });
});
