/**
 * The master key in an HSM, against a real PKCS#11 token: SoftHSM 2 (Debian's softhsm2, which
 * .ci/run installs). The token is made in a temporary directory with softhsm2-util, and its keys
 * by the matcher's own hsm:create-keys step.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErasureReason } from '@faceprint/contracts/common';
import { ConfigError } from '@faceprint/service-kit';
import { createLogger } from '@faceprint/telemetry';
import type * as Pkcs11 from 'pkcs11js';
import { loadMatcherConfig } from '../matcher-config.js';
import { consent, embedding, randomUnitVector, seededRandom, startInProcessMatcher, testEmbedderRegistry, type TestModels } from '../test-support.js';
import { dataKeyContext } from './data-keys.js';
import { createHsmKeys, Pkcs11MasterKey, type Pkcs11Options } from './pkcs11-master-key.js';
import { FileKeyStore } from './key-store.js';

const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';
const TOKEN = 'faceprint-test';
const PIN = '246810';

function skipUnlessSoftHsm(): false | string {
  if (existsSync(SOFTHSM_LIBRARY)) return false;
  const reason = `needs SoftHSM 2 (${SOFTHSM_LIBRARY}; apt-get install softhsm2)`;
  if (process.env.CI) throw new Error(`CI must have a PKCS#11 token to test against: it ${reason}`);
  return reason;
}

/** The attributes of the secret key labelled `label`, read as a client of the token. */
function keyAttributes(tokenLabel: string, pin: string, label: string): { extractable: boolean; sensitive: boolean; onToken: boolean } {
  const p11 = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11;
  const module = new p11.PKCS11();
  module.load(SOFTHSM_LIBRARY);
  module.C_Initialize();
  try {
    const slot = module.C_GetSlotList(true).find((candidate) => module.C_GetTokenInfo(candidate).label.trim() === tokenLabel)!;
    const session = module.C_OpenSession(slot, p11.CKF_SERIAL_SESSION);
    module.C_Login(session, p11.CKU_USER, pin);
    module.C_FindObjectsInit(session, [{ type: p11.CKA_LABEL, value: label }]);
    const [key] = module.C_FindObjects(session, 1);
    module.C_FindObjectsFinal(session);
    const [extractable, sensitive, onToken] = module.C_GetAttributeValue(session, key!, [{ type: p11.CKA_EXTRACTABLE }, { type: p11.CKA_SENSITIVE }, { type: p11.CKA_TOKEN }]);
    // The key's value cannot be read.
    assert.throws(() => module.C_GetAttributeValue(session, key!, [{ type: p11.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
    const bool = (attribute: Pkcs11.Attribute | undefined) => Buffer.from(attribute!.value as Buffer)[0] === 1;
    return { extractable: bool(extractable), sensitive: bool(sensitive), onToken: bool(onToken) };
  } finally {
    module.C_Finalize();
    module.close();
  }
}

describe('the master key in a PKCS#11 HSM (SoftHSM 2)', { skip: skipUnlessSoftHsm() }, () => {
  const log = createLogger({ service: 'matcher', level: 'silent' });
  let root: string;
  let options: Pkcs11Options;
  let formerSoftHsmConf: string | undefined;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'faceprint-hsm-'));
    // SoftHSM finds its tokens through SOFTHSM2_CONF, read when the library initialises.
    formerSoftHsmConf = process.env.SOFTHSM2_CONF;
    process.env.SOFTHSM2_CONF = join(root, 'softhsm2.conf');
    await writeFile(process.env.SOFTHSM2_CONF, `directories.tokendir = ${join(root, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    await mkdir(join(root, 'tokens'));
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', TOKEN, '--so-pin', '13579', '--pin', PIN], { env: process.env, stdio: 'ignore' });
    await writeFile(join(root, 'pin'), `${PIN}\n`, { mode: 0o600 });
    options = { library: SOFTHSM_LIBRARY, tokenLabel: TOKEN, pinFile: join(root, 'pin'), wrapKeyLabel: 'faceprint-master', digestKeyLabel: 'faceprint-digest', sessions: 2 };
  });
  after(async () => {
    if (formerSoftHsmConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = formerSoftHsmConf;
    await rm(root, { recursive: true, force: true });
  });

  it('makes its two keys once, in the token, never extractable', async () => {
    await assert.rejects(Pkcs11MasterKey.open(options, log), /no secret key labelled "faceprint-master" \(FACEPRINT_MATCHER_PKCS11_WRAP_KEY_LABEL\): make the keys once with `npm run -s hsm:create-keys/);
    assert.deepEqual(await createHsmKeys(options, log), { created: ['faceprint-master', 'faceprint-digest'], found: [] });
    assert.deepEqual(await createHsmKeys(options, log), { created: [], found: ['faceprint-master', 'faceprint-digest'] }, 'a second run keeps the keys');
    for (const label of ['faceprint-master', 'faceprint-digest']) {
      assert.deepEqual(keyAttributes(TOKEN, PIN, label), { extractable: false, sensitive: true, onToken: true });
    }
  });

  it('wraps and unwraps data keys bound to their context, and makes keyed digests per purpose', async () => {
    const key = await Pkcs11MasterKey.open(options, log);
    try {
      assert.match(key.masterKeyId, /^pkcs11:faceprint-test\/faceprint-master\/[0-9a-f]{6}$/);
      // More operations at once than sessions: they wait for one, and each gets its own result.
      const dataKeys = Array.from({ length: 40 }, () => randomBytes(32));
      const wrapped = await Promise.all(dataKeys.map((dataKey, i) => key.wrap(dataKey, dataKeyContext('bank', `key-${i}`))));
      assert.equal(new Set(wrapped.map((bytes) => bytes.toString('hex'))).size, 40);
      for (const [i, bytes] of wrapped.entries()) {
        assert.equal(bytes.length, 12 + 32 + 16, 'nonce, wrapped key, tag');
        assert.ok(!bytes.includes(dataKeys[i]!), 'the data key does not appear in what is stored');
      }
      const unwrapped = await Promise.all(wrapped.map((bytes, i) => key.unwrap(bytes, key.masterKeyId, dataKeyContext('bank', `key-${i}`))));
      assert.deepEqual(unwrapped, dataKeys);
      // Moved to another key id, changed, or named as another master key's: refused.
      await assert.rejects(key.unwrap(wrapped[0]!, key.masterKeyId, dataKeyContext('bank', 'key-1')), /did not unwrap/);
      const changed = Buffer.from(wrapped[0]!);
      changed[20]! ^= 1;
      await assert.rejects(key.unwrap(changed, key.masterKeyId, dataKeyContext('bank', 'key-0')), /did not unwrap/);
      await assert.rejects(key.unwrap(wrapped[0]!, 'local:0123456789abcdef', dataKeyContext('bank', 'key-0')), /wrapped by master key local:0123456789abcdef, and this matcher holds pkcs11:/);

      const digest = await key.digest('erasure-log', 'bank\0alice');
      assert.match(digest, /^[0-9a-f]{64}$/);
      assert.equal(await key.digest('erasure-log', 'bank\0alice'), digest);
      assert.notEqual(await key.digest('enroll-request', 'bank\0alice'), digest);
    } finally {
      await key.close();
    }
    await assert.rejects(key.wrap(randomBytes(32), 'x'), /closed/);
  });

  it('names what is wrong: the PIN, the token, a key that is missing or of the wrong kind', async () => {
    await writeFile(join(root, 'wrong-pin'), '000000\n');
    await assert.rejects(Pkcs11MasterKey.open({ ...options, pinFile: join(root, 'wrong-pin') }, log), /refused the PIN in .*wrong-pin: CKR_PIN_INCORRECT/);
    await assert.rejects(Pkcs11MasterKey.open({ ...options, pinFile: join(root, 'no-such-pin') }, log), /FACEPRINT_MATCHER_PKCS11_PIN_FILE .* cannot be read: ENOENT/);
    await assert.rejects(Pkcs11MasterKey.open({ ...options, tokenLabel: 'other' }, log), /no PKCS#11 token is labelled "other"/);
    await assert.rejects(Pkcs11MasterKey.open({ ...options, digestKeyLabel: 'absent' }, log), /no secret key labelled "absent" \(FACEPRINT_MATCHER_PKCS11_DIGEST_KEY_LABEL\)/);
    // The digest key where the wrapping key should be: not an AES key.
    await assert.rejects(Pkcs11MasterKey.open({ ...options, wrapKeyLabel: 'faceprint-digest' }, log), /"faceprint-digest" \(FACEPRINT_MATCHER_PKCS11_WRAP_KEY_LABEL\) must be a 256-bit AES key/);
    await assert.rejects(Pkcs11MasterKey.open({ ...options, library: join(root, 'pin') }, log), /FACEPRINT_MATCHER_PKCS11_LIBRARY .* is not a PKCS#11 library that loads/);
    // After every failure the module was let go: a good open still works.
    const key = await Pkcs11MasterKey.open(options, log);
    await key.close();
  });

  it('is configured by FACEPRINT_MATCHER_PKCS11_*, which needs a token and a PIN file and no master key file', () => {
    const base = { FACEPRINT_MATCHER_DATA_DIR: join(root, 'config-gallery') };
    assert.equal(loadMatcherConfig(base).hsm, undefined);
    assert.equal(loadMatcherConfig(base).generateMasterKey, true);
    const config = loadMatcherConfig({ ...base, FACEPRINT_MATCHER_PKCS11_LIBRARY: SOFTHSM_LIBRARY, FACEPRINT_MATCHER_PKCS11_TOKEN_LABEL: TOKEN, FACEPRINT_MATCHER_PKCS11_PIN_FILE: options.pinFile });
    assert.deepEqual(config.hsm, { ...options, sessions: 4 });
    assert.equal(config.generateMasterKey, false, 'no master key file is made when the key is in the HSM');
    assert.throws(
      () => loadMatcherConfig({ ...base, FACEPRINT_MATCHER_PKCS11_LIBRARY: SOFTHSM_LIBRARY, FACEPRINT_MATCHER_MASTER_KEY_FILE: join(root, 'master.key') }),
      (error: unknown) =>
        error instanceof ConfigError &&
        Object.keys(error.problems).sort().join() === 'FACEPRINT_MATCHER_MASTER_KEY_FILE,FACEPRINT_MATCHER_PKCS11_PIN_FILE,FACEPRINT_MATCHER_PKCS11_TOKEN_LABEL',
    );
  });

  describe('a matcher whose master key is in the HSM', () => {
    let models: TestModels;
    before(async () => {
      models = await testEmbedderRegistry();
    });
    after(async () => {
      await rm(models.root, { recursive: true, force: true });
    });

    it('enrols, identifies after a restart, erases for good, and a gallery of other keys does not start on it', async () => {
      const dataDir = join(root, 'gallery');
      const keyDir = join(root, 'gallery-keys');
      const hsmEnv = {
        FACEPRINT_MATCHER_DATA_DIR: dataDir,
        FACEPRINT_MODEL_REGISTRY: models.root,
        FACEPRINT_MATCHER_PKCS11_LIBRARY: SOFTHSM_LIBRARY,
        FACEPRINT_MATCHER_PKCS11_TOKEN_LABEL: TOKEN,
        FACEPRINT_MATCHER_PKCS11_PIN_FILE: options.pinFile,
      };
      const operator = { tenantId: 'bank', callerId: 'backend', roles: ['operator'] };
      const officer = { tenantId: 'bank', callerId: 'dpo@example.org', roles: ['compliance'] };
      const random = seededRandom(7);
      const faces = { alice: randomUnitVector(random), bob: randomUnitVector(random) };

      let matcher = await startInProcessMatcher(hsmEnv);
      for (const [subjectId, face] of Object.entries(faces)) {
        await matcher.matcher.enrollTemplates({ context: operator, requestId: `${subjectId}-1`, subjectId, consent: consent(), templates: [{ embedding: embedding(face, models.v1) }] });
      }
      await matcher.close();
      assert.ok(!existsSync(join(keyDir, 'master.key')), 'no master key file exists');
      const keyStore = await FileKeyStore.open(join(keyDir, 'data-keys'));
      const keyIds = await keyStore.keyIds();
      assert.equal(keyIds.length, 2);
      for (const keyId of keyIds) assert.match((await keyStore.get(keyId))!.masterKeyId, /^pkcs11:faceprint-test\//);

      // A restart opens the sealed templates through the HSM.
      matcher = await startInProcessMatcher(hsmEnv);
      const found = await matcher.matcher.identify({ context: operator, probe: embedding(faces.alice, models.v1), topK: 1 });
      assert.equal(found.candidates[0]?.subjectId, 'alice');
      const erased = await matcher.compliance.eraseSubject({ context: officer, subjectId: 'alice', requestRef: 'DSR-1', reason: ErasureReason.SUBJECT_REQUEST });
      assert.equal(Number(erased.receipt!.counts.find((count) => count.kind === 'data_key')?.count), 1);
      await matcher.close();

      // The erasure log's receipt is sealed and found again through the HSM's digest key, after a restart.
      matcher = await startInProcessMatcher(hsmEnv);
      const again = await matcher.compliance.eraseSubject({ context: officer, subjectId: 'alice', requestRef: 'DSR-1-retry', reason: ErasureReason.SUBJECT_REQUEST });
      assert.equal(again.replayed, true);
      assert.equal(again.receipt?.receiptId, erased.receipt?.receiptId, 'the first receipt again');
      await matcher.close();
      const left = (await keyStore.keyIds()).filter((id) => keyIds.includes(id));
      assert.equal(left.length, 1, "alice's data key is destroyed; bob's is kept");

      // The same gallery with a master key file instead: the HSM's keys do not open with it, and it says so.
      await assert.rejects(
        startInProcessMatcher({ FACEPRINT_MATCHER_DATA_DIR: dataDir, FACEPRINT_MODEL_REGISTRY: models.root }),
        /wrapped by master key pkcs11:faceprint-test\/faceprint-master\/[0-9a-f]+, and this matcher holds local:/,
      );
    });
  });
});
