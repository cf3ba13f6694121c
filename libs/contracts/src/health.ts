/** grpc.health.v1: the standard health service, for reflection and typed health clients. */
export * from './gen/grpc/health/v1/health_pb.js';
