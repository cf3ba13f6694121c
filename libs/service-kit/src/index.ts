/**
 * @faceprint/service-kit: what every faceprint service stands on. Typed grpc-js servers and
 * clients for protobuf-es services, health and reflection, graceful drain, one error type with
 * google.rpc details, request validation, and typed configuration from the environment.
 */
export * from './client.js';
export * from './config.js';
export * from './ports.js';
export * from './errors.js';
export { DEFAULT_FLOW_CONTROL_WINDOW_BYTES } from './flow-control.js';
export * from './grpc-adapter.js';
export * from './rpc-types.js';
export * from './run-service.js';
export * from './server.js';
export * from './settle.js';
export * from './peer-identity.js';
export * from './validation.js';
export * from './timing.js';
export * from './tls.js';
export * from './health.js';
