/**
 * `npm start`: the whole faceprint mesh on this machine. Starts every service, waits until all
 * report SERVING, prints the endpoints, and drains everything on Ctrl-C (SIGINT) or SIGTERM.
 * Service logs (JSON lines) pass through to standard output.
 */
import { DEFAULT_METRICS_PORTS } from '@faceprint/service-kit';
import { buildModelRegistry, startLocalMesh } from './local-mesh.js';

// The model registry first: the first start imports the default models, later starts find them.
// The detector, aligner and embedder cannot serve without them.
if (!(await buildModelRegistry())) {
  process.stderr.write('faceprint: the default models could not be imported (see above); without network access set FACEPRINT_MODEL_MIRROR (docs/models.md)\n');
  process.exit(1);
}

const mesh = await startLocalMesh({ onOutput: (line) => process.stdout.write(`${line}\n`) }).catch((error: unknown) => {
  process.stderr.write(`faceprint: the mesh did not start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

const rows = Object.entries(mesh.endpoints).map(
  ([name, address]) => `  ${name.padEnd(9)} grpc ${address.padEnd(16)} metrics http://127.0.0.1:${DEFAULT_METRICS_PORTS[name as keyof typeof DEFAULT_METRICS_PORTS]}/metrics`,
);
process.stdout.write(
  [
    '',
    'faceprint mesh is SERVING:',
    ...rows,
    '',
    'Try (the faceprint command finds the local development API keys in data/gateway/dev-keys.json):',
    '  npx faceprint detect PHOTO.jpg --out faces.png',
    '  npx faceprint enroll --subject alice alice-1.jpg alice-2.jpg',
    '  npx faceprint identify PHOTO.jpg',
    '  npx faceprint verify --subject alice PHOTO.jpg --far 1e-4',
    `  npx buf curl --protocol grpc --http2-prior-knowledge --list-services http://${mesh.endpoints.gateway}`,
    '',
    'Ctrl-C drains and stops every service.',
    '',
  ].join('\n'),
);

let stopping = false;
const shutdown = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\nfaceprint: ${signal}: draining every service...\n`);
  void mesh.stop().then(() => {
    process.stdout.write('faceprint: stopped\n');
    process.exit(0);
  });
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

// A service the mesh could not keep running: everything stops, loudly (the supervisor said why).
void mesh.failed.then(async (error) => {
  process.stderr.write(`faceprint: ${error.message}; stopping the mesh\n`);
  stopping = true;
  await mesh.stop();
  process.exit(1);
});
