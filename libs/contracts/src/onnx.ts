/** onnx: the ONNX IR messages faceprint writes and reads (model files, not an rpc contract). */
export * from './gen/onnx/onnx_pb.js';
