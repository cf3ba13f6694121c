/**
 * @faceprint/testing: helpers for tests that run real servers and processes on loopback.
 * Test-only; no service depends on it.
 */
export * from './assertions.js';
export * from './health.js';
export * from './reflection.js';
export * from './services.js';
export * from './process-checks.js';
export * from './otlp-receiver.js';
export * from './shared-data.js';
export * from './model-registry.js';
export * from './postgres.js';
export * from './cli.js';
