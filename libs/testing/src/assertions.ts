/** Assertions the services' tests share. */
import assert from 'node:assert/strict';
import { FaceprintError } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';

/** Asserts that `call` fails with gRPC status `code` (and a message matching `pattern`); returns the error. */
export async function rejectsWith(call: Promise<unknown>, code: status, pattern?: RegExp): Promise<FaceprintError> {
  let caught: FaceprintError | undefined;
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof FaceprintError, String(error));
    assert.equal(status[error.code], status[code], error.message);
    if (pattern) assert.match(error.message, pattern);
    caught = error;
    return true;
  });
  return caught!;
}
