import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DetectorService } from '@faceprint/contracts/detector';
import { Health } from '@faceprint/contracts/health';
import { status } from '@grpc/grpc-js';
import { createClient } from './client.js';
import { type FaceprintError } from './errors.js';
import { ServingStatus } from './health.js';
import { implement } from './rpc-types.js';
import { startTestServer } from './test-support.js';

describe('grpc.health.v1', async () => {
  const server = await startTestServer([implement(DetectorService, {})]);
  const health = createClient(Health, server.address, { retry: false });
  after(async () => {
    health.close();
    await server.shutdown();
  });

  it('answers Check for the server and its services, NOT_FOUND for an unknown one', async () => {
    assert.equal((await health.check({ service: DetectorService.typeName })).status, ServingStatus.NOT_SERVING);
    server.setServing(true);
    assert.equal((await health.check({})).status, ServingStatus.SERVING);
    await assert.rejects(health.check({ service: 'no.such.Service' }), (error: FaceprintError) => error.code === status.NOT_FOUND);
  });

  it('lists every status', async () => {
    const { statuses } = await health.list({});
    assert.deepEqual(Object.keys(statuses).sort(), ['', DetectorService.typeName]);
  });

  it('answers Watch on an unknown service with SERVICE_UNKNOWN', async () => {
    for await (const response of health.watch({ service: 'no.such.Service' })) {
      assert.equal(response.status, ServingStatus.SERVICE_UNKNOWN);
      break;
    }
  });
});
