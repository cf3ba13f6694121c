/**
 * `npm run models`: imports the default model set into the registry, idempotently (an unchanged
 * source adds no version) and promotes each model that has no current version yet.
 * Settings: FACEPRINT_MODEL_REGISTRY, FACEPRINT_MODEL_MIRROR (see docs/models.md).
 */
import { ModelRegistry } from '@faceprint/model-registry';
import { ConfigError, EXIT_CONFIG } from '@faceprint/service-kit';
import { DEFAULT_MODELS, IMPORTERS, runImport } from './importers/index.js';
import { loadTrainerConfig } from './trainer-config.js';

let config;
try {
  config = loadTrainerConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`faceprint models: ${error.message}\n`);
  process.exit(EXIT_CONFIG);
}

const registry = new ModelRegistry(config.registryRoot);
process.stdout.write(`model registry: ${config.registryRoot}\n`);
process.stdout.write(config.mirrorDir ? `model mirror:   ${config.mirrorDir}\n` : 'model mirror:   none (URL sources are downloaded)\n');
let failed = 0;
for (const name of DEFAULT_MODELS) {
  const importer = IMPORTERS.get(name)!;
  const started = performance.now();
  try {
    const { manifest, created, promoted } = await runImport(registry, importer, { mirrorDir: config.mirrorDir }, { promoteIfFirst: true });
    const state = [created ? 'imported' : 'unchanged', promoted ? 'promoted to current' : ''].filter(Boolean).join(', ');
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(`  ${name.padEnd(22)} v${manifest.model!.version}  ${state.padEnd(30)} sha256 ${manifest.model!.sha256.slice(0, 12)}  (${seconds} s)\n`);
  } catch (error) {
    failed += 1;
    process.stderr.write(`  ${name.padEnd(22)} FAILED: ${(error as Error).message}\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
