import { describeServiceProcess } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';

// Detect validates its request before the (not yet implemented) detection: an empty one is invalid.
describeServiceProcess('detector', { expected: { detect: status.INVALID_ARGUMENT } });
