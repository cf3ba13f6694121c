/** faceprint.trainer.v1: the TrainerService contract and the model manifest. */
export * from './gen/faceprint/trainer/v1/model_pb.js';
export * from './gen/faceprint/trainer/v1/trainer_pb.js';
