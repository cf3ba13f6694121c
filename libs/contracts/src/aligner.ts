/** faceprint.aligner.v1: the AlignerService contract. */
export * from './gen/faceprint/aligner/v1/aligner_pb.js';
