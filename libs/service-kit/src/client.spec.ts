import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MatcherService } from '@faceprint/contracts/matcher';
import { TrainerService } from '@faceprint/contracts/trainer';
import { DEFAULT_RETRY, isIdempotent, retryServiceConfig } from './client.js';

describe('retryServiceConfig', () => {
  it('retries exactly the rpcs the proto declares idempotent, with a retry budget', () => {
    const config = retryServiceConfig(TrainerService, DEFAULT_RETRY) as {
      methodConfig: { name: { method: string }[]; retryPolicy: { retryableStatusCodes: string[] } }[];
      retryThrottling: { maxTokens: number };
    };
    const retried = config.methodConfig[0]!.name.map((n) => n.method).sort();
    assert.ok(retried.includes('ListModels'));
    assert.ok(retried.includes('PromoteModel'));
    assert.ok(!retried.includes('EvaluateModel'), 'EvaluateModel starts a job: not idempotent');
    assert.deepEqual(config.methodConfig[0]!.retryPolicy.retryableStatusCodes, ['UNAVAILABLE']);
    assert.equal(config.retryThrottling.maxTokens, 10);
  });

  it('reads idempotency from the descriptors', () => {
    assert.equal(isIdempotent(MatcherService.method.identify), true);
    assert.equal(isIdempotent(TrainerService.method.evaluateModel), false);
  });
});
