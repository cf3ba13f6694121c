/** @faceprint/onnx: build ONNX models (graph-builder) and read what a model declares (inspect). */
export * from './graph-builder.js';
export * from './inspect.js';
