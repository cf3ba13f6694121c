/**
 * `@faceprint/service-kit/clients`: the part of the kit a caller needs (typed clients, the error
 * type, client TLS, the default ports) without the server side's telemetry and reflection, so that
 * the `faceprint` command and the client library start quickly.
 */
export * from './client.js';
export * from './errors.js';
export { DEFAULT_GRPC_PORTS } from './ports.js';
export { clientCredentialsFromEnv } from './tls.js';
export type * from './rpc-types.js';
