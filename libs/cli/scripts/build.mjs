#!/usr/bin/env node
/**
 * Bundles the `faceprint` command into libs/cli/dist so that it starts without compiling
 * TypeScript on every call (tsx alone costs about 150 ms before any command code runs). Run by
 * `npm ci`/`npm install` (the root package's `prepare`) and by `npm run build:cli`.
 *
 * Only faceprint's own TypeScript is bundled; npm packages stay external and load as usual. Each
 * source file's `import.meta.url` is replaced by that file's own URL, so paths found relative to a
 * source file (the repository's data/ folder, migrations, worker scripts) mean what they mean when
 * run from source. dist/inputs.json lists the sources: bin/faceprint.js runs the bundle only while
 * none of them has changed since, and runs the sources through tsx otherwise.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLI_DIR = fileURLToPath(new URL('..', import.meta.url));
const REPO_ROOT = join(CLI_DIR, '..', '..');
const OUT_DIR = join(CLI_DIR, 'dist');

/** Leaves every npm package external; bundles the faceprint workspaces and relative imports. */
const externalPackages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@faceprint/') ? undefined : { path: args.path, external: true }));
  },
};

/** Gives each bundled source file its own `import.meta.url`. */
const ownImportMetaUrl = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      return { contents: source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts', resolveDir: dirname(args.path) };
    });
  },
};

try {
  await rm(OUT_DIR, { recursive: true, force: true });
  const { build } = await import('esbuild'); // inside the try: an install without it still succeeds
  const builtAt = Date.now();
  const result = await build({
    entryPoints: [join(CLI_DIR, 'src', 'main.ts')],
    outdir: OUT_DIR,
    bundle: true,
    splitting: true, // each command's code loads only when that command runs
    format: 'esm',
    platform: 'node',
    target: 'node20',
    conditions: ['import', 'node'],
    metafile: true,
    logLevel: 'warning',
    plugins: [externalPackages, ownImportMetaUrl],
  });
  const inputs = Object.keys(result.metafile.inputs).map((input) => relative(REPO_ROOT, join(process.cwd(), input)));
  await writeFile(join(OUT_DIR, 'inputs.json'), `${JSON.stringify({ root: REPO_ROOT, builtAt, inputs })}\n`);
  process.stderr.write(`faceprint CLI bundled into ${relative(REPO_ROOT, OUT_DIR)} (${inputs.length} sources)\n`);
} catch (error) {
  // The command still works without the bundle (through tsx, more slowly): an install never fails here.
  await rm(OUT_DIR, { recursive: true, force: true });
  process.stderr.write(`faceprint CLI not bundled (${error instanceof Error ? error.message : String(error)}); it runs from source\n`);
}
