/** @faceprint/onnx: build ONNX models (graph-builder), read what a model declares (inspect), feed an image model (image-input), run sessions as the services do (session-options, worker-session: a session on its own thread). */
export * from './graph-builder.js';
export * from './image-input.js';
export * from './inspect.js';
export * from './session-options.js';
export * from './worker-session.js';
