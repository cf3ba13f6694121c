/**
 * @faceprint/telemetry: traces, metrics and logs for every service. Load `./register` with
 * `--import` before the application (see register.ts); use the rest from the service kit.
 */
export * from './logger.js';
export * from './metrics.js';
export * from './tracing.js';
