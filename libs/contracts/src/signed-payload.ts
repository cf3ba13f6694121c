/**
 * What erasure receipts and decision records share: a JSON payload signed with the matcher's
 * Ed25519 key, named by its key id. Opening one checks the key, the signature over the exact bytes
 * and that the bytes are UTF-8 JSON; each format then checks its own fields.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';

/** The id of a signing key: `ed25519:` and the hex sha256 of its public key (SPKI DER). */
export function signingKeyId(publicKey: KeyObject): string {
  return `ed25519:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** The payload of a signed document and the key that signed it, or why it does not open. */
export type OpenedPayload<T> = { readonly payload: T; readonly key: KeyObject } | { readonly problems: readonly string[] };

/** Checks `signature` over `signedPayload` with `publicKey` (a KeyObject or PEM) and parses the payload. */
export function openSignedPayload<T>(signedPayload: Uint8Array, signature: Uint8Array, publicKey: KeyObject | string): OpenedPayload<T> {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
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
