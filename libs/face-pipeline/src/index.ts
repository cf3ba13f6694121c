/** @faceprint/face-pipeline: detect -> choose -> align -> embed over the vision services. */
export * from './pipeline.js';
