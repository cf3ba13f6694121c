/** faceprint.gateway.v1: the public FaceService, ComplianceService and ApiKeyService contracts. */
export * from './gen/faceprint/gateway/v1/api_keys_pb.js';
export * from './gen/faceprint/gateway/v1/compliance_pb.js';
export * from './gen/faceprint/gateway/v1/face_pb.js';
