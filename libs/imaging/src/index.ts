/** @faceprint/imaging: decoding caller images for the vision services. */
export * from './decode.js';
export * from './image-memory-budget.js';
