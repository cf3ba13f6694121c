import { describeServiceProcess } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';
import { writeTestApiKeys } from './test-support.js';

// Every rpc needs an API key: an empty, unauthenticated request is refused before anything else.
const { file } = writeTestApiKeys([{ id: 'ops', tenant: 'acme', roles: ['operator'] }]);
const unauthenticated = Object.fromEntries(
  ['enroll', 'verify', 'compare', 'identify', 'detect', 'getGalleryStatus', 'reembedGallery', 'eraseSubject', 'exportSubject', 'listAuditEvents', 'getPublicKeys', 'createApiKey', 'listApiKeys', 'rotateApiKey', 'revokeApiKey'].map((rpc) => [rpc, status.UNAUTHENTICATED]),
);
// Started alone, without the services behind it: alive, not ready.
describeServiceProcess('gateway', { env: { FACEPRINT_GATEWAY_API_KEYS_FILE: file }, expected: unauthenticated, notReadyAlone: true });
