/**
 * The trainer's gRPC handlers: the model registry (list, manifest, import, promote). Training,
 * evaluation and job rpcs answer UNIMPLEMENTED until trainer v2.
 */
import { ModelTask, TrainerService } from '@faceprint/contracts/trainer';
import { ModelRegistry, RegistryError } from '@faceprint/model-registry';
import { FaceprintError, implement, RequestValidator, type ServiceRegistration } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import { IMPORTERS, runImport } from './importers/index.js';
import type { TrainerConfig } from './trainer-config.js';

/** Registry failures as gRPC statuses. */
function fromRegistryError(error: unknown): unknown {
  if (!(error instanceof RegistryError)) return error;
  switch (error.kind) {
    case 'NOT_FOUND':
      return new FaceprintError(status.NOT_FOUND, error.message);
    case 'INVALID':
      return new FaceprintError(status.INVALID_ARGUMENT, error.message);
    case 'INTEGRITY':
      return new FaceprintError(status.DATA_LOSS, error.message);
  }
}

async function registryCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromRegistryError(error);
  }
}

/** The services the trainer process serves. */
export function trainerService(config: TrainerConfig): ServiceRegistration[] {
  const registry = new ModelRegistry(config.registryRoot);
  return [
    implement(TrainerService, {
      async listModels({ task }) {
        const models = await registryCall(() => registry.listModels());
        return {
          models: models
            .filter((m) => task === ModelTask.UNSPECIFIED || m.task === task)
            .map((m) => ({ name: m.name, task: m.task, currentVersion: m.currentVersion ?? 0, versions: [...m.versions] })),
        };
      },

      async getModelManifest({ name, version }) {
        new RequestValidator().check(name !== '', 'name', 'required').throwIfInvalid();
        return { manifest: await registryCall(() => registry.readManifest(name, version === 0 ? undefined : version)) };
      },

      async importModel({ importer: importerName, mirrorDir, promoteIfFirst }) {
        const importer = IMPORTERS.get(importerName);
        if (!importer) {
          throw FaceprintError.invalidArgument([{ field: 'importer', description: `unknown importer "${importerName}"; known: ${[...IMPORTERS.keys()].join(', ')}` }]);
        }
        try {
          const result = await runImport(registry, importer, { mirrorDir: mirrorDir || config.mirrorDir }, { promoteIfFirst });
          return { manifest: result.manifest, created: result.created };
        } catch (error) {
          if (error instanceof RegistryError) throw fromRegistryError(error);
          throw new FaceprintError(status.FAILED_PRECONDITION, `import of ${importerName} failed: ${(error as Error).message}`, { cause: error });
        }
      },

      async promoteModel({ model }) {
        const v = new RequestValidator();
        v.check(!!model?.name, 'model.name', 'required');
        v.check((model?.version ?? 0) > 0, 'model.version', 'required');
        v.throwIfInvalid();
        return registryCall(async () => {
          const { previous } = await registry.promote(model!.name, model!.version);
          const current = (await registry.readManifest(model!.name, model!.version)).model;
          const before = previous === undefined ? undefined : (await registry.readManifest(model!.name, previous)).model;
          return {
            previous: before,
            current,
            gates: [{ name: 'sha256', passed: true, detail: 'the model file matches its manifest' }],
          };
        });
      },
    }),
  ];
}
