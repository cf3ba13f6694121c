/** @faceprint/onnx: build ONNX models (graph-builder; flip-average: test-time flip averaging as graph nodes), read what a model declares (inspect), feed an image model (image-input), read a face detector's outputs (detector-heads), run sessions as the services do (session-options, worker-session: a session on its own thread). */
export * from './flip-average.js';
export * from './detector-heads.js';
export * from './graph-builder.js';
export * from './image-input.js';
export * from './inspect.js';
export * from './session-options.js';
export * from './worker-session.js';
