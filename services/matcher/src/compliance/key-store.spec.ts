import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { link, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileKeyStore } from './key-store.js';

describe('FileKeyStore', () => {
  const dirs: string[] = [];
  const openStore = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faceprint-key-store-'));
    dirs.push(dir);
    return { dir, store: await FileKeyStore.open(join(dir, 'keys')) };
  };
  after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  it('keeps a key as given, one file each, readable only by its owner', async () => {
    const { dir, store } = await openStore();
    const keyId = randomUUID();
    const key = { tenantId: 'bank', wrappedKey: randomBytes(60), masterKeyId: 'local:abc' };
    await store.put(keyId, key);
    assert.deepEqual(await store.get(keyId), key);
    assert.equal(await store.get(randomUUID()), undefined);
    assert.deepEqual(await store.keyIds(), [keyId]);
    assert.equal((await stat(join(dir, 'keys', keyId.slice(0, 2), `${keyId}.key`))).mode & 0o777, 0o600);
    await assert.rejects(store.get('../../etc/passwd'), /lower-case UUID/);
  });

  it('destroys a key by overwriting its bytes in place before unlinking it; again is a no-op', async () => {
    const { dir, store } = await openStore();
    const keyId = randomUUID();
    const wrappedKey = randomBytes(60);
    await store.put(keyId, { tenantId: 'bank', wrappedKey, masterKeyId: 'local:abc' });
    // A second name for the same file (inode): what it reads after the destruction is what the disk held.
    const path = join(dir, 'keys', keyId.slice(0, 2), `${keyId}.key`);
    const witness = join(dir, 'witness');
    await link(path, witness);
    const before = await readFile(witness);
    assert.ok(before.includes(wrappedKey.toString('base64')));
    assert.equal(await store.destroy(keyId), true);
    const after = await readFile(witness);
    assert.equal(after.length, before.length);
    assert.ok(!after.includes(wrappedKey.toString('base64')) && !after.equals(before), 'the bytes were overwritten');
    assert.equal(await store.get(keyId), undefined);
    assert.deepEqual(await store.keyIds(), []);
    assert.equal(await store.destroy(keyId), false);
  });
});
