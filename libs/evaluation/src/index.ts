/**
 * @faceprint/evaluation: the evaluation protocols shared by `faceprint eval` and the trainer's
 * jobs: datasets, embedding images through the services, metrics, calibration.
 */
export * from './align-frames.js';
export * from './all-pairs.js';
export * from './calibration.js';
export * from './error-bounds.js';
export * from './image-files.js';
export * from './datasets.js';
export * from './embed-images.js';
export * from './metrics.js';
export * from './multi-sample.js';
export * from './pad.js';
export * from './quality-curve.js';
export * from './seeded-random.js';
export * from './verification.js';
