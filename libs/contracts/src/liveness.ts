/** faceprint.liveness.v1: the LivenessService contract. */
export * from './gen/faceprint/liveness/v1/liveness_pb.js';
