/**
 * The gateway's ApiKeyService: a tenant's administrators (the admin role) make, list, rotate and
 * revoke its API keys. The gateway makes each secret, returns it once and sends the matcher only
 * its sha256; the matcher keeps the keys (shared by every gateway replica) and audits each change.
 */
import { create } from '@bufbuild/protobuf';
import { ApiKeySchema } from '@faceprint/contracts/common';
import { ApiKeyService } from '@faceprint/contracts/gateway';
import { type ApiKeyService as MatcherApiKeyService } from '@faceprint/contracts/matcher';
import { FaceprintError, implement, type ServiceClient, type ServiceRegistration } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import { authorize, newApiKey, secretSha256, type ApiKeys } from './api-keys.js';

/** A key of the gateway's keys file is changed where it is kept, by whoever deploys the gateway. */
function refuseKeysFileKey(keys: ApiKeys, tenantId: string, keyId: string, change: string): void {
  if (keys.hasStaticKey(tenantId, keyId)) {
    throw new FaceprintError(status.FAILED_PRECONDITION, `"${keyId}" is a key of the gateway's keys file: it is ${change} there (FACEPRINT_GATEWAY_API_KEYS_FILE), not through the API`);
  }
}

export function apiKeyService(matcherKeys: ServiceClient<typeof MatcherApiKeyService>, keys: ApiKeys): ServiceRegistration {
  return implement(ApiKeyService, {
    async createApiKey(request, ctx) {
      const context = await authorize(keys, ctx, 'admin');
      if (keys.hasStaticKey(context.tenantId, request.keyId)) {
        throw new FaceprintError(status.ALREADY_EXISTS, `the gateway's keys file has a key "${request.keyId}" in this tenant: choose another id`);
      }
      const secret = newApiKey();
      const { key } = await matcherKeys.createApiKey({ context, keyId: request.keyId, roles: request.roles, secretSha256: secretSha256(secret) }, { parent: ctx });
      return { key, secret };
    },
    async listApiKeys(_request, ctx) {
      const context = await authorize(keys, ctx, 'admin');
      const fromFile = keys.staticKeys(context.tenantId).map((entry) => create(ApiKeySchema, { keyId: entry.id, tenantId: entry.tenant, roles: [...entry.roles], fromKeysFile: true }));
      return { keys: [...fromFile, ...(await matcherKeys.listApiKeys({ context }, { parent: ctx })).keys] };
    },
    async rotateApiKey(request, ctx) {
      const context = await authorize(keys, ctx, 'admin');
      refuseKeysFileKey(keys, context.tenantId, request.keyId, 'rotated');
      const secret = newApiKey();
      const { key } = await matcherKeys.rotateApiKey({ context, keyId: request.keyId, secretSha256: secretSha256(secret), graceSeconds: request.graceSeconds }, { parent: ctx });
      keys.forget(context.tenantId, request.keyId);
      return { key, secret };
    },
    async revokeApiKey(request, ctx) {
      const context = await authorize(keys, ctx, 'admin');
      refuseKeysFileKey(keys, context.tenantId, request.keyId, 'revoked');
      const { key } = await matcherKeys.revokeApiKey({ context, keyId: request.keyId }, { parent: ctx });
      keys.forget(context.tenantId, request.keyId);
      return { key };
    },
  });
}
