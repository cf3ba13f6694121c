import { describeServiceProcess } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';

// Detect validates its request at the edge: an empty one is invalid.
describeServiceProcess('gateway', { expected: { detect: status.INVALID_ARGUMENT } });
