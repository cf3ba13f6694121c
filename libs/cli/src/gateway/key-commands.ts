/**
 * `faceprint keys create|list|rotate|revoke`: a tenant's API keys, managed by its administrators
 * (an API key with the admin role; on the local mesh, the development admin key). A secret is
 * printed once, when a key is made or rotated: faceprint keeps only its hash.
 */
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { API_KEY_ROTATION_GRACE_MAX_SECONDS } from '@faceprint/contracts';
import type { ApiKey } from '@faceprint/contracts/common';
import { connect, EXIT, GLOBAL_OPTIONS, numberFlag, parseFlags, UsageError } from './connection.js';

const time = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString() : '');
const keyJson = (key: ApiKey | undefined) => ({
  key_id: key?.keyId ?? '',
  tenant: key?.tenantId ?? '',
  roles: key?.roles ?? [],
  created: time(key?.createTime),
  created_by: key?.createdBy ?? '',
  rotated: time(key?.rotateTime),
  previous_secret_valid_until: time(key?.previousSecretExpireTime),
  revoked: time(key?.revokeTime),
  last_used: time(key?.lastUseTime),
  from_keys_file: key?.fromKeysFile ?? false,
});
const keyText = (k: ReturnType<typeof keyJson>) =>
  k.from_keys_file
    ? `${k.key_id}  ${k.roles.join(',')}  from the gateway's keys file (changed there; its calls are audited under its id)`
    : `${k.key_id}  ${k.roles.join(',')}  made ${k.created} by ${k.created_by}${k.rotated ? `, rotated ${k.rotated}` : ''}${k.revoked ? `, REVOKED ${k.revoked}` : ''}, last used ${k.last_used || 'never'}`;

export async function keys(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values } = parseFlags({ args: rest, options: { ...GLOBAL_OPTIONS, id: { type: 'string' }, roles: { type: 'string' }, 'grace-hours': { type: 'string' } } });
  const needId = () => {
    if (!values.id) throw new UsageError(`keys ${action} needs --id KEY_ID`);
    return values.id;
  };
  const print = (object: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(object)}\n` : `${text}\n`);
  let run: (client: ReturnType<typeof connect>) => Promise<void>;
  switch (action) {
    case 'create': {
      const id = needId();
      if (!values.roles) throw new UsageError('keys create needs --roles, some of operator, compliance, admin (comma-separated)');
      const roles = values.roles.split(',').map((r) => r.trim());
      run = async (client) => {
        const { key, secret } = await client.createApiKey(id, roles);
        print({ ...keyJson(key), secret }, `made ${keyText(keyJson(key))}\nsecret (shown only now): ${secret}`);
      };
      break;
    }
    case 'list':
      run = async (client) => {
        const listed = (await client.listApiKeys()).keys.map(keyJson);
        print({ keys: listed }, listed.length > 0 ? listed.map(keyText).join('\n') : 'no keys');
      };
      break;
    case 'rotate': {
      const id = needId();
      const hours = numberFlag(values['grace-hours'], '--grace-hours', (n) => n >= 0 && n * 3600 <= API_KEY_ROTATION_GRACE_MAX_SECONDS, 'a number of hours from 0 to 720 (30 days)') ?? 0;
      run = async (client) => {
        const { key, secret } = await client.rotateApiKey(id, { graceSeconds: Math.round(hours * 3600) });
        print({ ...keyJson(key), secret }, `rotated ${keyText(keyJson(key))}\nnew secret (shown only now): ${secret}`);
      };
      break;
    }
    case 'revoke': {
      const id = needId();
      run = async (client) => {
        const { key } = await client.revokeApiKey(id);
        print(keyJson(key), `revoked ${keyText(keyJson(key))}`);
      };
      break;
    }
    default:
      throw new UsageError(`keys takes create, list, rotate or revoke${action ? `, not "${action}"` : ''}`);
  }
  const client = connect(values, 'admin');
  try {
    await run(client);
    return EXIT.ok;
  } finally {
    client.close();
  }
}
