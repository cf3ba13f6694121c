/** Per-stage timings, as every response reports them (faceprint.common.v1.StageTiming). */
import { create } from '@bufbuild/protobuf';
import { DurationSchema, type Duration } from '@bufbuild/protobuf/wkt';
import { StageTimingSchema, type StageTiming } from '@faceprint/contracts/common';

/** A Duration from fractional milliseconds, keeping sub-millisecond precision. */
export function durationFromMillis(ms: number): Duration {
  const wholeSeconds = Math.floor(ms / 1000);
  return create(DurationSchema, { seconds: BigInt(wholeSeconds), nanos: Math.round((ms - wholeSeconds * 1000) * 1e6) });
}

/** The timing of a stage that started at `startedAt` (a `performance.now()` reading) and ends now. */
export function stageTiming(stage: string, service: string, startedAt: number): StageTiming {
  return stageDuration(stage, service, performance.now() - startedAt);
}

/** The timing of a stage that took `ms` milliseconds in all. */
export function stageDuration(stage: string, service: string, ms: number): StageTiming {
  return create(StageTimingSchema, { stage, service, duration: durationFromMillis(ms) });
}

/** A Duration in fractional milliseconds. */
export function durationMs(duration: Duration): number {
  return Number(duration.seconds) * 1000 + duration.nanos / 1e6;
}
