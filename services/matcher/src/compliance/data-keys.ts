/**
 * Crypto-shredding: template vectors are sealed with AES-256-GCM under a per-subject data key;
 * data keys are stored wrapped by a master key that never enters the database. Destroying a
 * subject's wrapped key makes every copy of its sealed templates unreadable.
 *
 * Written on node:crypto rather than a library: AES-256-GCM is the whole job, and Node's
 * OpenSSL binding is the well-kept implementation underneath any library we would pick.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** A data key and a master key: 256 bits. */
export const KEY_BYTES = 32;
/** What sealing adds to a vector: the nonce and the tag. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/**
 * Wraps and unwraps data keys with a master key. Local today (a key file); a KMS client
 * (AWS KMS, GCP KMS, Vault transit) implements the same two calls.
 */
export interface KeyWrapper {
  /** The id stored with each wrapped key, to find the master key that unwraps it (rotation). */
  readonly masterKeyId: string;
  wrap(dataKey: Buffer, context: string): Promise<Buffer>;
  unwrap(wrapped: Buffer, masterKeyId: string, context: string): Promise<Buffer>;
  /**
   * A keyed digest (HMAC-SHA256, hex) of `data` for `purpose`: a lookup key that names nothing
   * to whoever reads the database without the master key (the erasure log's subject digests).
   */
  digest(purpose: string, data: string): Promise<string>;
}

/** A master key held in this process, read from a key file. */
export class LocalMasterKey implements KeyWrapper {
  readonly masterKeyId: string;
  readonly #key: Buffer;
  /** The HMAC key of each digest purpose, derived once. */
  readonly #digestKeys = new Map<string, Buffer>();

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`a master key is ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = key;
    // A fingerprint: it tells keys apart and reveals nothing of a 256-bit random key.
    this.masterKeyId = `local:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
  }

  async wrap(dataKey: Buffer, context: string): Promise<Buffer> {
    return seal(this.#key, dataKey, context);
  }

  async unwrap(wrapped: Buffer, masterKeyId: string, context: string): Promise<Buffer> {
    if (masterKeyId !== this.masterKeyId) {
      throw new Error(`a data key is wrapped by master key ${masterKeyId}, and this matcher holds ${this.masterKeyId}: every replica must use the same master key`);
    }
    return open(this.#key, wrapped, context);
  }

  async digest(purpose: string, data: string): Promise<string> {
    // One HMAC key per purpose, derived from the master key: digests of one purpose say nothing of another's.
    let key = this.#digestKeys.get(purpose);
    if (!key) this.#digestKeys.set(purpose, (key = Buffer.from(hkdfSync('sha256', this.#key, Buffer.alloc(0), `faceprint.digest:${purpose}`, KEY_BYTES))));
    return createHmac('sha256', key).update(data, 'utf8').digest('hex');
  }
}

/** A new random data key. */
export const newDataKey = (): Buffer => randomBytes(KEY_BYTES);

/** Seals `plaintext` under `key`, bound to `context` (authenticated, not stored): nonce, ciphertext, tag. */
export function seal(key: Buffer, plaintext: Uint8Array, context: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Opens what {@link seal} made with the same key and context; throws if either differs or the bytes were changed. */
export function open(key: Buffer, sealed: Uint8Array, context: string): Buffer {
  if (sealed.length < SEAL_OVERHEAD) throw new Error('sealed data is shorter than its nonce and tag');
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, NONCE_BYTES));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
}

/** The context a data key is wrapped under: its tenant and id, so a wrapped key cannot be moved. */
export const dataKeyContext = (tenantId: string, keyId: string) => `faceprint.data_key:${tenantId}:${keyId}`;
/** The context a template vector is sealed under: its template id, so a sealed vector cannot be moved. */
export const templateContext = (templateId: string) => `faceprint.template:${templateId}`;

/** What an aligned crop kept with a template is bound to. */
export const cropContext = (templateId: string) => `faceprint.template-crop:${templateId}`;
