/**
 * The telemetry entry point, loaded before the application:
 *
 *   node --import tsx --import @faceprint/telemetry/register services/<name>/src/main.ts
 *
 * Under ESM, instrumentation only sees modules that are loaded after the import-in-the-middle
 * hook is registered, and a static import graph is loaded before any of it runs. So the hook is
 * registered here, in a separate --import, or no gRPC or pg span ever appears.
 *
 * The service name is OTEL_SERVICE_NAME, or `faceprint-<name>` for an entry point under
 * `services/<name>/`.
 */
import { register } from 'node:module';
import { startTracing } from './tracing.js';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);

function serviceNameFromEntry(): string {
  const entry = process.argv[1] ?? '';
  const match = /[\\/]services[\\/]([a-z-]+)[\\/]/.exec(entry);
  return match ? `faceprint-${match[1]}` : 'faceprint';
}

startTracing(process.env.OTEL_SERVICE_NAME || serviceNameFromEntry());
