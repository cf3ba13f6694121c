/** faceprint.embedder.v1: the EmbedderService contract. */
export * from './gen/faceprint/embedder/v1/embedder_pb.js';
