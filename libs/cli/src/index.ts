/** @faceprint/cli: the evaluation tools' building blocks, for tests and benchmarks. */
export * from './eval/datasets.js';
export * from './eval/metrics.js';
