/**
 * The matcher's receipt-signing keys from the command line. `faceprint receipt keys` fetches the
 * public keys (the active one and every retired one) from the gateway as one PEM file, which
 * `faceprint receipt verify --public-key` takes. `faceprint receipt rotate-key` gives the matcher a
 * new signing key on disk (the local mesh's by default) and keeps the old public key in
 * `retired-signing-keys/` beside it, where the matcher reads retired keys at its next start, so
 * that everything signed before stays verifiable. In Kubernetes the key is a Secret: rotate it
 * there (docs/compliance.md).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { RETIRED_SIGNING_KEYS_DIR, signingKeyId } from '@faceprint/contracts';
import { connect, EXIT, GLOBAL_OPTIONS, UsageError } from '../gateway/connection.js';
import { LOCAL_PUBLIC_KEY } from './verify.js';

/** `faceprint receipt keys [--out FILE] [--json]`. */
export async function receiptKeys(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, out: { type: 'string' } } });
  const client = connect(values, 'operator');
  try {
    const keys = await client.publicKeys();
    const pem = keys.map((k) => `# ${k.keyId} (${k.active ? 'active' : 'retired'})\n${k.publicKeyPem.trim()}\n`).join('');
    if (values.out) await writeFile(values.out, pem);
    if (values.json) process.stdout.write(`${JSON.stringify({ keys: keys.map((k) => ({ key_id: k.keyId, active: k.active, public_key_pem: k.publicKeyPem })), ...(values.out ? { written_to: values.out } : {}) })}\n`);
    else process.stdout.write(values.out ? `${keys.length} key(s) written to ${values.out}: ${keys.map((k) => `${k.keyId} (${k.active ? 'active' : 'retired'})`).join(', ')}\n` : pem);
    return EXIT.ok;
  } finally {
    client.close();
  }
}

/** `faceprint receipt rotate-key [--key-file FILE]`. */
export async function rotateKey(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'key-file': { type: 'string' }, json: { type: 'boolean', default: false } } });
  const keyFile = values['key-file'] ?? LOCAL_PUBLIC_KEY.replace(/\.pub\.pem$/, '.pem');
  const oldPem = await readFile(keyFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read the signing key ${keyFile} (${error.code ?? error.message}); name it with --key-file (the matcher's FACEPRINT_MATCHER_SIGNING_KEY_FILE)`);
  });
  const oldPublic = createPublicKey(createPrivateKey(oldPem));
  const retiredId = signingKeyId(oldPublic);
  // 1. The old public key first: were the process to stop after it, nothing would be lost.
  const retiredDir = join(dirname(keyFile), RETIRED_SIGNING_KEYS_DIR);
  await mkdir(retiredDir, { recursive: true });
  await writeFile(join(retiredDir, `${retiredId.replace(/^ed25519:/, '').slice(0, 32)}.pub.pem`), oldPublic.export({ type: 'spki', format: 'pem' }).toString());
  // 2. The new private key replaces the old in one rename; its public key beside it.
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await writeFile(`${keyFile}.new`, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
  await rename(`${keyFile}.new`, keyFile);
  await writeFile(keyFile.replace(/(\.pem)?$/, '.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const activeId = signingKeyId(publicKey);
  const result = { active: activeId, retired: retiredId, retired_dir: retiredDir };
  process.stdout.write(
    values.json
      ? `${JSON.stringify(result)}\n`
      : `new signing key ${activeId}\nretired ${retiredId} (kept in ${retiredDir})\nrestart the matcher to sign with the new key (npm start again, or a rollout of its pods)\n`,
  );
  return EXIT.ok;
}
