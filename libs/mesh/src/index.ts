/** @faceprint/mesh: runs services as processes, one at a time or the whole local mesh. */
export * from './job-services.js';
export * from './local-mesh.js';
export * from './service-process.js';
export * from './mesh-certificates.js';
export * from './mesh-tls.js';
