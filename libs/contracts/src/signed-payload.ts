/**
 * What erasure receipts and decision records share: a JSON payload signed with the matcher's
 * Ed25519 key, named by its key id. Opening one picks the key by that id among the keys given (the
 * active one and retired ones, after a rotation), checks the signature over the exact bytes and
 * that the bytes are UTF-8 JSON; each format then checks its own fields.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';

/** The folder beside the matcher's signing key where retired public keys are kept (`faceprint receipt rotate-key`). */
export const RETIRED_SIGNING_KEYS_DIR = 'retired-signing-keys';

/** The id of a signing key: `ed25519:` and the hex sha256 of its public key (SPKI DER). */
export function signingKeyId(publicKey: KeyObject): string {
  return `ed25519:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** One public key (a KeyObject or PEM), or several (the matcher's active and retired keys). */
export type PublicKeys = KeyObject | string | readonly (KeyObject | string)[];

/** Every public key of a PEM text that may hold several (`faceprint receipt keys` writes such a bundle). */
export function parsePublicKeys(pem: string): KeyObject[] {
  const blocks = pem.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new Error('no PEM public key (-----BEGIN PUBLIC KEY-----) found');
  return blocks.map((block) => createPublicKey(block));
}

/** The payload of a signed document and the key that signed it, or why it does not open. */
export type OpenedPayload<T> = { readonly payload: T; readonly key: KeyObject } | { readonly problems: readonly string[] };

/**
 * Checks `signature` over `signedPayload` and parses the payload. With several keys, the one whose
 * id is `statedKeyId` (what the document says signed it) is used; none of them is a problem that names it.
 */
export function openSignedPayload<T>(signedPayload: Uint8Array, signature: Uint8Array, publicKeys: PublicKeys, statedKeyId: string): OpenedPayload<T> {
  const keys = (Array.isArray(publicKeys) ? publicKeys : [publicKeys]).map((k: KeyObject | string) => (typeof k === 'string' ? createPublicKey(k) : k));
  const key = keys.length === 1 ? keys[0] : keys.find((k) => k.asymmetricKeyType === 'ed25519' && signingKeyId(k) === statedKeyId);
  if (!key) return { problems: [`signed by ${statedKeyId || 'an unnamed key'}, which is none of the ${keys.length} public keys given`] };
  if (key.asymmetricKeyType !== 'ed25519') return { problems: [`the public key is ${key.asymmetricKeyType ?? 'not an asymmetric key'}, not Ed25519`] };
  if (!verify(null, signedPayload, key, signature)) return { problems: ['the signature does not match the signed payload and this public key'] };
  try {
    return { payload: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(signedPayload)) as T, key };
  } catch {
    return { problems: ['the signed payload is not UTF-8 JSON'] };
  }
}

/** Collects disagreements between what a document states beside its payload and what the payload signed says. */
export function fieldChecker(document: string): { expect: (what: string, stated: unknown, signed: unknown) => void; problems: string[] } {
  const problems: string[] = [];
  return {
    problems,
    expect: (what, stated, signed) => {
      if (stated !== signed) problems.push(`${what}: the ${document} says ${JSON.stringify(stated)}, the signed payload ${JSON.stringify(signed)}`);
    },
  };
}
