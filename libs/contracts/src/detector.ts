/** faceprint.detector.v1: the DetectorService contract. */
export * from './gen/faceprint/detector/v1/detector_pb.js';
