/**
 * The master key in a hardware security module, through PKCS#11: the production option for
 * payment providers and anyone who must not hold the key in a file. The key never leaves the
 * module; the matcher asks it to wrap and unwrap data keys (AES-256-GCM) and to make the keyed
 * digests (HMAC-SHA256). PKCS#11 is what HSMs speak (Thales Luna, Entrust nShield, YubiHSM 2,
 * AWS CloudHSM) and what Google Cloud KMS offers through its PKCS#11 library (kmsp11); SoftHSM 2
 * is the software token the tests run against.
 *
 * The two keys are made once by the operator ({@link createHsmKeys}, `npm run hsm:create-keys`, or
 * the module's own tools): an AES-256 key that encrypts and decrypts, and a 256-bit generic secret
 * that signs (HMAC). A running matcher only finds them by label and never creates keys, so two
 * replicas cannot race to make two.
 *
 * The client is `pkcs11js` (PeculiarVentures' binding, an optional dependency built at install),
 * loaded only when an HSM is configured.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type * as Pkcs11 from 'pkcs11js';
import type { Logger } from '@faceprint/telemetry';
import { KEY_BYTES, type KeyWrapper } from './data-keys.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const DIGEST_BYTES = 32;

/** Where the HSM is and which keys in it to use. */
export interface Pkcs11Options {
  /** The module's PKCS#11 library (a `.so`). */
  readonly library: string;
  /** The label of the token (HSM partition) that holds the keys. */
  readonly tokenLabel: string;
  /** A file holding the token's user PIN (one line). */
  readonly pinFile: string;
  /** The label of the AES-256 key that wraps data keys. */
  readonly wrapKeyLabel: string;
  /** The label of the generic secret key that makes the keyed digests. */
  readonly digestKeyLabel: string;
  /** Sessions opened on the token: how many HSM operations may run at once. */
  readonly sessions: number;
}

/** The module's PKCS#11 binding, or a clear error when it was not built at install. */
function loadBinding(): typeof Pkcs11 {
  try {
    return createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11;
  } catch (error) {
    throw new Error('FACEPRINT_MATCHER_PKCS11_LIBRARY is set, and the PKCS#11 binding (the optional dependency pkcs11js) is not installed: it is built at `npm ci` and needs python3, make and a C++ compiler there', { cause: error });
  }
}

/** A master key held by an HSM. Open with {@link Pkcs11MasterKey.open}; close at shutdown. */
export class Pkcs11MasterKey implements KeyWrapper {
  readonly masterKeyId: string;
  readonly #p11: typeof Pkcs11;
  readonly #module: Pkcs11.PKCS11;
  readonly #token: OpenToken;
  readonly #wrapKey: Pkcs11.Handle;
  readonly #digestKey: Pkcs11.Handle;
  /** Idle sessions; an operation takes one and gives it back (a PKCS#11 session runs one operation at a time). */
  readonly #idle: Pkcs11.Handle[];
  readonly #waiting: ((session: Pkcs11.Handle) => void)[] = [];
  readonly #sessionCount: number;
  #closed = false;
  /** Called when the last operation after close() gives its session back. */
  #drained: (() => void) | undefined;

  private constructor(token: OpenToken, keys: { wrap: Pkcs11.Handle; digest: Pkcs11.Handle }, masterKeyId: string) {
    this.#token = token;
    this.#p11 = token.p11;
    this.#module = token.module;
    this.#idle = [...token.sessions];
    this.#sessionCount = token.sessions.length;
    this.#wrapKey = keys.wrap;
    this.#digestKey = keys.digest;
    this.masterKeyId = masterKeyId;
  }

  /** Loads the module, logs in to the token and finds both keys; every failure names what to fix. */
  static async open(options: Pkcs11Options, log: Logger): Promise<Pkcs11MasterKey> {
    const token = await openToken(options, options.sessions, false);
    try {
      const wrap = findKey(token, options.wrapKeyLabel, 'FACEPRINT_MATCHER_PKCS11_WRAP_KEY_LABEL', WRAP_KEY, log);
      const digest = findKey(token, options.digestKeyLabel, 'FACEPRINT_MATCHER_PKCS11_DIGEST_KEY_LABEL', DIGEST_KEY, log);
      if (wrap === undefined || digest === undefined) {
        const missing = wrap === undefined ? `"${options.wrapKeyLabel}" (FACEPRINT_MATCHER_PKCS11_WRAP_KEY_LABEL)` : `"${options.digestKeyLabel}" (FACEPRINT_MATCHER_PKCS11_DIGEST_KEY_LABEL)`;
        throw new Error(`the PKCS#11 token holds no secret key labelled ${missing}: make the keys once with \`npm run -s hsm:create-keys -w @faceprint/matcher\` or the HSM's own tools (docs/deploy.md)`);
      }
      const masterKeyId = `pkcs11:${options.tokenLabel}/${options.wrapKeyLabel}${checkValueOf(token, wrap)}`;
      log.info({ token: options.tokenLabel, wrapKey: options.wrapKeyLabel, digestKey: options.digestKeyLabel, sessions: options.sessions }, 'the master key is in a PKCS#11 token');
      return new Pkcs11MasterKey(token, { wrap, digest }, masterKeyId);
    } catch (error) {
      token.close();
      throw error;
    }
  }

  async wrap(dataKey: Buffer, context: string): Promise<Buffer> {
    const nonce = randomBytes(NONCE_BYTES);
    const sealed = await this.#withSession(async (session) => {
      this.#module.C_EncryptInit(session, this.#gcm(nonce, context), this.#wrapKey);
      return this.#module.C_EncryptAsync(session, dataKey, Buffer.alloc(dataKey.length + TAG_BYTES));
    });
    // The same layout as a locally sealed key: nonce, ciphertext, tag.
    return Buffer.concat([nonce, sealed]);
  }

  async unwrap(wrapped: Buffer, masterKeyId: string, context: string): Promise<Buffer> {
    if (masterKeyId !== this.masterKeyId) {
      throw new Error(`a data key is wrapped by master key ${masterKeyId}, and this matcher holds ${this.masterKeyId}: every replica must use the same master key`);
    }
    if (wrapped.length < NONCE_BYTES + TAG_BYTES) throw new Error('a wrapped data key is shorter than its nonce and tag');
    try {
      return await this.#withSession(async (session) => {
        this.#module.C_DecryptInit(session, this.#gcm(wrapped.subarray(0, NONCE_BYTES), context), this.#wrapKey);
        return this.#module.C_DecryptAsync(session, wrapped.subarray(NONCE_BYTES), Buffer.alloc(wrapped.length - NONCE_BYTES));
      });
    } catch (error) {
      throw new Error('the HSM did not unwrap a data key: it was changed, moved to another subject, or wrapped by another key', { cause: error });
    }
  }

  async digest(purpose: string, data: string): Promise<string> {
    // The purpose is part of what is signed (a purpose name has no NUL), so digests of one purpose say nothing of another's.
    const message = Buffer.from(`faceprint.digest:${purpose}\0${data}`, 'utf8');
    const mac = await this.#withSession(async (session) => {
      this.#module.C_SignInit(session, { mechanism: this.#p11.CKM_SHA256_HMAC }, this.#digestKey);
      return this.#module.C_SignAsync(session, message, Buffer.alloc(DIGEST_BYTES));
    });
    return mac.toString('hex');
  }

  /** Closes the sessions and unloads the module once every running operation has ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idle.length < this.#sessionCount) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#token.close();
  }

  #gcm(nonce: Buffer, context: string): Pkcs11.Mechanism {
    const parameter: Pkcs11.AesGCM = { type: this.#p11.CK_PARAMS_AES_GCM, iv: nonce, aad: Buffer.from(context, 'utf8'), ivBits: NONCE_BYTES * 8, tagBits: TAG_BYTES * 8 };
    return { mechanism: this.#p11.CKM_AES_GCM, parameter };
  }

  /** Runs `operation` on an idle session, waiting for one when all are busy. */
  async #withSession<T>(operation: (session: Pkcs11.Handle) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error('the PKCS#11 master key is closed');
    const session = this.#idle.pop() ?? (await new Promise<Pkcs11.Handle>((resolve) => this.#waiting.push(resolve)));
    try {
      return await operation(session);
    } finally {
      const next = this.#waiting.shift();
      if (next) next(session);
      else this.#idle.push(session);
      if (this.#closed && this.#idle.length === this.#sessionCount) this.#drained?.();
    }
  }
}

/** An open, logged-in token: the module, its sessions, and how to let it go. */
interface OpenToken {
  readonly p11: typeof Pkcs11;
  readonly module: Pkcs11.PKCS11;
  readonly sessions: Pkcs11.Handle[];
  close(): void;
}

/** Loads the module, opens `count` sessions on the labelled token and logs in; every failure names what to fix. */
async function openToken(options: Pkcs11Options, count: number, readWrite: boolean): Promise<OpenToken> {
  const p11 = loadBinding();
  const pin = (await readFile(options.pinFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new Error(`FACEPRINT_MATCHER_PKCS11_PIN_FILE (${options.pinFile}) cannot be read: ${error.code ?? error.message}`);
  })).trim();
  const module = new p11.PKCS11();
  try {
    module.load(options.library);
  } catch (error) {
    throw new Error(`FACEPRINT_MATCHER_PKCS11_LIBRARY (${options.library}) is not a PKCS#11 library that loads: ${(error as Error).message}`, { cause: error });
  }
  let initialised = false;
  const close = () => {
    // Finalising closes every session (and so logs out).
    if (initialised) module.C_Finalize();
    module.close();
  };
  try {
    module.C_Initialize();
    initialised = true;
    const slot = module.C_GetSlotList(true).find((candidate) => module.C_GetTokenInfo(candidate).label.trim() === options.tokenLabel);
    if (slot === undefined) throw new Error(`no PKCS#11 token is labelled "${options.tokenLabel}" (FACEPRINT_MATCHER_PKCS11_TOKEN_LABEL)`);
    const flags = p11.CKF_SERIAL_SESSION | (readWrite ? p11.CKF_RW_SESSION : 0);
    const sessions = Array.from({ length: count }, () => module.C_OpenSession(slot, flags));
    try {
      // A login holds for every session of this process.
      module.C_Login(sessions[0]!, p11.CKU_USER, pin);
    } catch (error) {
      if ((error as Pkcs11.Pkcs11Error).code !== p11.CKR_USER_ALREADY_LOGGED_IN) {
        throw new Error(`the PKCS#11 token "${options.tokenLabel}" refused the PIN in ${options.pinFile}: ${(error as Error).message}`, { cause: error });
      }
    }
    return { p11, module, sessions, close };
  } catch (error) {
    close();
    throw error;
  }
}

/** What each of the two keys is: its PKCS#11 key type and the uses it must allow. */
interface KeyKind {
  readonly name: string;
  readonly keyType: (p11: typeof Pkcs11) => number;
  readonly generate: (p11: typeof Pkcs11) => number;
  readonly uses: (p11: typeof Pkcs11) => number[];
}
const WRAP_KEY: KeyKind = { name: 'AES', keyType: (p11) => p11.CKK_AES, generate: (p11) => p11.CKM_AES_KEY_GEN, uses: (p11) => [p11.CKA_ENCRYPT, p11.CKA_DECRYPT] };
const DIGEST_KEY: KeyKind = { name: 'generic secret (HMAC)', keyType: (p11) => p11.CKK_GENERIC_SECRET, generate: (p11) => p11.CKM_GENERIC_SECRET_KEY_GEN, uses: (p11) => [p11.CKA_SIGN] };

/** The one secret key labelled `label` (undefined when there is none), checked for its type, its uses, and that it cannot leave the token. */
function findKey({ p11, module, sessions: [session] }: OpenToken, label: string, setting: string, kind: KeyKind, log: Logger): Pkcs11.Handle | undefined {
  module.C_FindObjectsInit(session!, [
    { type: p11.CKA_CLASS, value: p11.CKO_SECRET_KEY },
    { type: p11.CKA_LABEL, value: label },
  ]);
  const found = module.C_FindObjects(session!, 2);
  module.C_FindObjectsFinal(session!);
  if (found.length === 0) return undefined;
  if (found.length > 1) throw new Error(`the PKCS#11 token holds several secret keys labelled "${label}" (${setting}): the label must name one key`);
  const key = found[0]!;
  const [type, length, extractable, ...uses] = module.C_GetAttributeValue(session!, key, [
    { type: p11.CKA_KEY_TYPE },
    { type: p11.CKA_VALUE_LEN },
    { type: p11.CKA_EXTRACTABLE },
    ...kind.uses(p11).map((use) => ({ type: use })),
  ]);
  if (readUlong(type!.value) !== kind.keyType(p11) || readUlong(length!.value) !== KEY_BYTES) throw new Error(`the PKCS#11 key "${label}" (${setting}) must be a 256-bit ${kind.name} key`);
  if (uses.some((use) => !readBool(use.value))) throw new Error(`the PKCS#11 key "${label}" (${setting}) is not allowed to ${kind === WRAP_KEY ? 'encrypt and decrypt' : 'sign'}`);
  if (readBool(extractable!.value)) log.warn({ key: label }, 'the PKCS#11 key can be extracted from the token (CKA_EXTRACTABLE); make it non-extractable so that it never leaves the HSM');
  return key;
}

/** `/<check value>` of a key, hex, so that a replaced key is told from the one that wrapped the stored keys; empty where the token keeps none. */
function checkValueOf({ p11, module, sessions: [session] }: OpenToken, key: Pkcs11.Handle): string {
  try {
    const [check] = module.C_GetAttributeValue(session!, key, [{ type: p11.CKA_CHECK_VALUE }]);
    return `/${Buffer.from(check!.value).toString('hex')}`;
  } catch {
    return '';
  }
}

/**
 * Makes the two keys the matcher uses, where the token does not hold them yet: 256 bits each,
 * generated in the token, stored on it, private, sensitive and never extractable. Returns the
 * labels it made and those it found (and checked). Run once, by the operator; never by a replica.
 */
export async function createHsmKeys(options: Pkcs11Options, log: Logger): Promise<{ created: string[]; found: string[] }> {
  const token = await openToken(options, 1, true);
  const { p11, module, sessions: [session] } = token;
  const created: string[] = [];
  const found: string[] = [];
  try {
    for (const [label, setting, kind] of [
      [options.wrapKeyLabel, 'FACEPRINT_MATCHER_PKCS11_WRAP_KEY_LABEL', WRAP_KEY],
      [options.digestKeyLabel, 'FACEPRINT_MATCHER_PKCS11_DIGEST_KEY_LABEL', DIGEST_KEY],
    ] as const) {
      if (findKey(token, label, setting, kind, log) !== undefined) {
        found.push(label);
        continue;
      }
      module.C_GenerateKey(session!, { mechanism: kind.generate(p11) }, [
        { type: p11.CKA_CLASS, value: p11.CKO_SECRET_KEY },
        { type: p11.CKA_KEY_TYPE, value: kind.keyType(p11) },
        { type: p11.CKA_LABEL, value: label },
        { type: p11.CKA_VALUE_LEN, value: KEY_BYTES },
        { type: p11.CKA_TOKEN, value: true },
        { type: p11.CKA_PRIVATE, value: true },
        { type: p11.CKA_SENSITIVE, value: true },
        { type: p11.CKA_EXTRACTABLE, value: false },
        ...kind.uses(p11).map((use) => ({ type: use, value: true })),
      ]);
      created.push(label);
    }
    return { created, found };
  } finally {
    token.close();
  }
}

/** A CK_ULONG attribute (native byte order, as pkcs11js returns it). */
const readUlong = (value: Pkcs11.Attribute['value']): number => {
  const bytes = Buffer.from(value as Buffer);
  return bytes.length >= 8 ? Number(bytes.readBigUInt64LE()) : bytes.readUInt32LE();
};
/** A CK_BBOOL attribute. */
const readBool = (value: Pkcs11.Attribute['value']): boolean => Buffer.from(value as Buffer)[0] === 1;
