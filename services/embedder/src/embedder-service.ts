/** The embedder's gRPC handlers: every rpc answers UNIMPLEMENTED until the vision issue lands. */
import { EmbedderService } from '@faceprint/contracts/embedder';
import { implement, type ServiceRegistration } from '@faceprint/service-kit';

/** The services the embedder process serves. */
export function embedderService(): ServiceRegistration[] {
  return [implement(EmbedderService, {})];
}
