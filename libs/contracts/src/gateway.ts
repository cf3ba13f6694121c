/** faceprint.gateway.v1: the public FaceService and ComplianceService contracts. */
export * from './gen/faceprint/gateway/v1/compliance_pb.js';
export * from './gen/faceprint/gateway/v1/face_pb.js';
