/** faceprint.matcher.v1: the MatcherService (gallery, search) and ComplianceService contracts. */
export * from './gen/faceprint/matcher/v1/compliance_pb.js';
export * from './gen/faceprint/matcher/v1/matcher_pb.js';
