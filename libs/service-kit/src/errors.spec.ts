import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metadata, status } from '@grpc/grpc-js';
import { FaceprintError, readStatusDetails, STATUS_DETAILS_TRAILER } from './errors.js';

describe('FaceprintError', () => {
  it('carries field violations to the trailer as a google.rpc.Status', () => {
    const error = FaceprintError.invalidArgument([
      { field: 'image.content', description: 'must not be empty' },
      { field: 'options.max_faces', description: 'must be between 1 and 1000' },
    ]);
    const sent = error.toStatus();
    assert.equal(sent.code, status.INVALID_ARGUMENT);
    assert.match(sent.details, /image\.content: must not be empty/);
    assert.ok(sent.metadata.get(STATUS_DETAILS_TRAILER)[0] instanceof Buffer);

    const details = readStatusDetails(sent.metadata);
    assert.equal(details.length, 1);
    const [badRequest] = details;
    assert.equal(badRequest?.$typeName, 'google.rpc.BadRequest');
    assert.deepEqual(
      badRequest?.$typeName === 'google.rpc.BadRequest' && badRequest.fieldViolations.map((v) => v.field),
      ['image.content', 'options.max_faces'],
    );
  });

  it('turns unknown errors into INTERNAL without their message, keeping them as the cause', () => {
    const internal = new Error('connection to postgres://admin:hunter2@db failed');
    const error = FaceprintError.from(internal);
    assert.equal(error.code, status.INTERNAL);
    assert.equal(error.message, 'internal error');
    assert.equal(error.cause, internal);
    assert.doesNotMatch(JSON.stringify(error.toStatus()), /hunter2/);
  });

  it('keeps a downstream gRPC error as it was sent', () => {
    const downstream = Object.assign(new Error('5 NOT_FOUND: subject "s-1" not found'), {
      code: status.NOT_FOUND,
      details: 'subject "s-1" not found',
      metadata: FaceprintError.notFound('subject', 's-1').toStatus().metadata,
    });
    const error = FaceprintError.from(downstream);
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.message, 'subject "s-1" not found');
    assert.equal(error.details[0]?.$typeName, 'google.rpc.ResourceInfo');
  });

  it('adds an ErrorInfo reason and reads no details from an empty trailer', () => {
    const error = FaceprintError.failedPrecondition('MODEL_VERSION', 'face-recognition-net:2', 'probe model differs').withReason('MODEL_MISMATCH');
    assert.deepEqual(
      error.details.map((d) => d.$typeName),
      ['google.rpc.PreconditionFailure', 'google.rpc.ErrorInfo'],
    );
    assert.deepEqual(readStatusDetails(new Metadata()), []);
  });
});
