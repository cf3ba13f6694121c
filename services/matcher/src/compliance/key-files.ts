/**
 * The matcher's secrets as files: the master key (wraps data keys) and the Ed25519 key that signs
 * erasure receipts. A configured file must exist. At the default paths (in the key directory
 * beside the gallery's data directory, never in it) a missing key is generated once; every
 * replica of a shared PostgreSQL gallery must then be given the same files (in Kubernetes, one
 * Secret).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { copyFile, link, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '@faceprint/telemetry';
import { KEY_BYTES, LocalMasterKey } from './data-keys.js';

/** Where the keys are, and whether a missing one may be generated (at the default paths). */
export interface KeyFileOptions {
  readonly masterKeyFile: string;
  readonly signingKeyFile: string;
  readonly generateMasterKey: boolean;
  readonly generateSigningKey: boolean;
}

/**
 * Moves default-path keys out of `formerDir` (the gallery's own `keys/`, where they were kept by
 * default before) into their current default places, so an existing gallery keeps its keys.
 */
export async function adoptFormerKeyFiles(formerDir: string, options: KeyFileOptions, log: Logger): Promise<void> {
  const moves = [
    ...(options.generateMasterKey ? [[join(formerDir, 'master.key'), options.masterKeyFile]] : []),
    ...(options.generateSigningKey ? [[join(formerDir, 'receipt-signing.pem'), options.signingKeyFile], [join(formerDir, 'receipt-signing.pub.pem'), options.signingKeyFile.replace(/(\.pem)?$/, '.pub.pem')]] : []),
  ];
  for (const [from, to] of moves as [string, string][]) {
    if (!(await exists(from)) || (await exists(to))) continue;
    await mkdir(dirname(to), { recursive: true, mode: 0o700 });
    await rename(from, to).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EXDEV') throw error;
      await copyFile(from, to);
      await rm(from);
    });
    log.warn({ from, to }, `moved ${basename(from)} out of the gallery's data directory; copies of that directory made before still hold it`);
  }
  // The old directory goes once it is empty (it may hold files of an operator's own).
  await rmdir(formerDir).catch(() => undefined);
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/** The master key (base64 of 32 bytes, one line). */
export async function loadMasterKey(options: KeyFileOptions, log: Logger): Promise<LocalMasterKey> {
  const text = await readOrCreate(options.masterKeyFile, options.generateMasterKey, () => `${randomBytes(KEY_BYTES).toString('base64')}\n`, log);
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${options.masterKeyFile} must hold ${KEY_BYTES} random bytes in base64 (e.g. \`openssl rand -base64 32\`), got ${key.length} bytes`);
  return new LocalMasterKey(key);
}

/** The receipt signing key (an Ed25519 private key, PKCS#8 PEM); its public key is written beside it as `.pub.pem`. */
export async function loadSigningKey(options: KeyFileOptions, log: Logger): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  const pem = await readOrCreate(options.signingKeyFile, options.generateSigningKey, () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), log);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`${options.signingKeyFile} must hold an Ed25519 private key in PEM (e.g. \`openssl genpkey -algorithm ed25519\`)`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${options.signingKeyFile} holds a ${privateKey.asymmetricKeyType} key; erasure receipts are signed with Ed25519`);
  const publicKey = createPublicKey(privateKey);
  const publicPath = options.signingKeyFile.replace(/(\.pem)?$/, '.pub.pem');
  await writeFile(publicPath, publicKey.export({ type: 'spki', format: 'pem' }).toString(), { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST' && error.code !== 'EACCES' && error.code !== 'EROFS') throw error;
  });
  return { privateKey, publicKey };
}

/**
 * The retired receipt-signing public keys (`*.pem` in `dir`, SPKI PEM; a missing folder holds
 * none): kept after a rotation so that GetPublicKeys still hands out what old receipts and records
 * were signed with. A file that is not an Ed25519 public key stops the start, naming it.
 */
export async function loadRetiredSigningKeys(dir: string): Promise<KeyObject[]> {
  const files = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return Promise.all(
    files
      .filter((f) => f.endsWith('.pem'))
      .sort()
      .map(async (file) => {
        const key = await readFile(join(dir, file), 'utf8').then(createPublicKey, (error: unknown) => {
          throw new Error(`${join(dir, file)} is not a readable public key`, { cause: error });
        });
        if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${join(dir, file)} holds a ${key.asymmetricKeyType} key, not a retired Ed25519 receipt-signing key`);
        return key;
      }),
  );
}

/**
 * The file's text. A missing file is generated when allowed: written aside, then linked into place,
 * so that processes starting together agree on one key and none reads a half-written file.
 */
async function readOrCreate(path: string, generate: boolean, make: () => string, log: Logger): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (!generate) throw new Error(`key file ${path} does not exist`, { cause: error });
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const aside = `${path}.${process.pid}.tmp`;
  await writeFile(aside, make(), { mode: 0o600 });
  try {
    await link(aside, path);
    log.warn({ path }, 'generated a new key file; back it up, and give every matcher replica of this gallery the same file');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await rm(aside, { force: true });
  }
  return readFile(path, 'utf8');
}
