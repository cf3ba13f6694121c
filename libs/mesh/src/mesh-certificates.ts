/**
 * Issues the local mesh's certificates (mesh-tls.ts says where they go): ECDSA P-256 through
 * WebCrypto, certificates built with @peculiar/x509 (Node has no API that issues certificates,
 * and shelling out to openssl would need it installed).
 */
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { access, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { SERVICE_NAMES } from '@faceprint/contracts';
import { MeshTls, type MeshIdentity } from './mesh-tls.js';

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const YEAR_MS = 365 * 86_400_000;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKey = webcrypto.CryptoKey;

/**
 * The mesh's certificates in `dir`, made where missing: the CA once (a new CA re-issues every
 * certificate), each service's and the command's certificate when absent.
 */
export async function ensureMeshTls(dir: string): Promise<MeshTls> {
  const tls = new MeshTls(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let ca: { cert: x509.X509Certificate; key: CryptoKey };
  if (await exists(tls.caFile)) {
    ca = { cert: new x509.X509Certificate(await readFile(tls.caFile, 'utf8')), key: await importKey(await readFile(join(dir, 'ca.key'), 'utf8')) };
  } else {
    ca = await createCa();
    await writeAtomically(join(dir, 'ca.key'), await exportKey(ca.key), 0o600);
    await writeAtomically(tls.caFile, ca.cert.toString('pem'), 0o644);
  }
  for (const identity of [...SERVICE_NAMES, 'cli'] as MeshIdentity[]) {
    if ((await exists(tls.certFile(identity))) && (await issuedBy(tls.certFile(identity), ca.cert))) continue;
    const leaf = await issue(identity, ca);
    await writeAtomically(tls.keyFile(identity), await exportKey(leaf.key), 0o600);
    await writeAtomically(tls.certFile(identity), leaf.cert.toString('pem'), 0o644);
  }
  return tls;
}

async function createCa(): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=faceprint local mesh CA',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 10 * YEAR_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, key: keys.privateKey };
}

/** A certificate for `identity` (its common name), valid for loopback, for both ends of a call. */
async function issue(identity: MeshIdentity, ca: { cert: x509.X509Certificate; key: CryptoKey }): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${identity}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 2 * YEAR_MS),
    signingKey: ca.key,
    publicKey: keys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: identity },
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { cert, key: keys.privateKey };
}

async function issuedBy(certFile: string, ca: x509.X509Certificate): Promise<boolean> {
  const cert = new x509.X509Certificate(await readFile(certFile, 'utf8'));
  // Re-issued a month before it expires.
  return cert.notAfter.getTime() - Date.now() > 30 * 86_400_000 && (await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }));
}

const serial = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');

async function exportKey(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(pem), ALGORITHM, true, ['sign']);
}

const exists = (path: string) => access(path).then(() => true, () => false);

/** Written aside and renamed into place, so a reader never sees half a file. */
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const aside = `${path}.${process.pid}.tmp`;
  await writeFile(aside, text, { mode });
  await rename(aside, path);
}
