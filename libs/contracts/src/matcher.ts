/** faceprint.matcher.v1: the MatcherService (gallery, search), ComplianceService and ApiKeyService contracts. */
export * from './gen/faceprint/matcher/v1/api_keys_pb.js';
export * from './gen/faceprint/matcher/v1/compliance_pb.js';
export * from './gen/faceprint/matcher/v1/matcher_pb.js';
