/** Shared messages of faceprint.common.v1: images, geometry, faces, models, timings, compliance. */
export * from './gen/faceprint/common/v1/api_key_pb.js';
export * from './gen/faceprint/common/v1/compliance_pb.js';
export * from './gen/faceprint/common/v1/context_pb.js';
export * from './gen/faceprint/common/v1/face_pb.js';
export * from './gen/faceprint/common/v1/geometry_pb.js';
export * from './gen/faceprint/common/v1/image_pb.js';
export * from './gen/faceprint/common/v1/liveness_pb.js';
export * from './gen/faceprint/common/v1/model_pb.js';
export * from './gen/faceprint/common/v1/timing_pb.js';
