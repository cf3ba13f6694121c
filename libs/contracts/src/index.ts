/**
 * @faceprint/contracts: the protobuf contracts of the mesh. Generated messages and services are
 * imported per area (`@faceprint/contracts/detector`, `.../common`, ...); this entry holds the
 * hand-written helpers that belong to the contracts.
 */
export * from './embedding.js';
export * from './decision-record.js';
export * from './erasure-receipt.js';
export * from './face-quality.js';
export * from './fused-threshold.js';
export * from './limits.js';
export * from './services.js';
export * from './signed-payload.js';
