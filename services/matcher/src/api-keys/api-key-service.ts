/**
 * The ApiKeyService handlers: the tenants' managed API keys in the gallery database
 * (migrations/0006_api_keys.sql), so that every gateway replica sees the same keys. The gateway
 * hashes secrets and sets the caller context; key management needs the admin role and acts on
 * the caller's tenant only. Creation, rotation and revocation are audited; each key's last use is
 * recorded at most once a minute (one write per key per minute, not one per call).
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { API_KEY_ID, API_KEY_ROLES, API_KEY_ROTATION_GRACE_MAX_SECONDS } from '@faceprint/contracts';
import { ApiKeySchema, AuditAction, type ApiKey, type CallerContext } from '@faceprint/contracts/common';
import { ApiKeyService } from '@faceprint/contracts/matcher';
import { FaceprintError, implement, RequestValidator } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import type pg from 'pg';
import { auditedCall } from '../compliance/audited.js';
import { withDatabaseErrors } from '../database/database-errors.js';
import type { Gallery } from '../gallery/gallery.js';
import { checkContext } from '../matching/request-checks.js';

/** The role that manages a tenant's keys. */
export const ADMIN_ROLE = 'admin';
/** A key's last use is written when the stored one is older than this. */
const LAST_USE_RESOLUTION_SECONDS = 60;

interface ApiKeyRow extends pg.QueryResultRow {
  tenant_id: string;
  key_id: string;
  roles: string[];
  created_at: Date;
  created_by: string;
  rotated_at: Date | null;
  previous_secret_expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}
const COLUMNS = 'tenant_id, key_id, roles, created_at, created_by, rotated_at, previous_secret_expires_at, revoked_at, last_used_at';

const timestamp = (date: Date | null) => (date ? timestampFromDate(date) : undefined);
const apiKeyMessage = (row: ApiKeyRow): ApiKey =>
  create(ApiKeySchema, {
    keyId: row.key_id,
    tenantId: row.tenant_id,
    roles: row.roles,
    createTime: timestamp(row.created_at),
    createdBy: row.created_by,
    rotateTime: timestamp(row.rotated_at),
    previousSecretExpireTime: timestamp(row.previous_secret_expires_at),
    revokeTime: timestamp(row.revoked_at),
    lastUseTime: timestamp(row.last_used_at),
  });

/** The tenant of an admin's call: INVALID_ARGUMENT without a context, PERMISSION_DENIED without the admin role. */
function adminTenant(v: RequestValidator, context: CallerContext | undefined): string {
  const tenantId = checkContext(v, context);
  v.throwIfInvalid();
  if (!context?.roles.includes(ADMIN_ROLE)) throw FaceprintError.permissionDenied(ADMIN_ROLE, `this call needs the "${ADMIN_ROLE}" role`);
  return tenantId;
}

const checkKeyId = (v: RequestValidator, keyId: string) => v.check(API_KEY_ID.test(keyId), 'key_id', keyId ? 'must be 1-128 of [A-Za-z0-9._:@-]' : 'is required');
const checkSecretHash = (v: RequestValidator, field: string, hash: Uint8Array) => v.check(hash.length === 32, field, 'must be the 32-byte sha256 of the secret');

export function apiKeyService(ready: () => Gallery, callers: { gatewayIdentity: string }) {
  const query = <R extends pg.QueryResultRow>(sql: string, values: unknown[]) => ready().db.pool.query<R>(sql, values);
  const notFound = (keyId: string, tenantId: string) => FaceprintError.notFound('API key', keyId, tenantId);

  return implement(
    ApiKeyService,
    withDatabaseErrors({
      async createApiKey(request) {
        const v = new RequestValidator();
        const tenantId = adminTenant(v, request.context);
        checkKeyId(v, request.keyId);
        const roles = [...new Set(request.roles)];
        v.check(roles.length > 0 && roles.every((r) => (API_KEY_ROLES as readonly string[]).includes(r)), 'roles', `must list some of ${API_KEY_ROLES.join(', ')}`);
        checkSecretHash(v, 'secret_sha256', request.secretSha256);
        v.throwIfInvalid();
        return auditedCall(ready(), request.context, AuditAction.API_KEY_CREATE, undefined, async () => {
          const { rows } = await query<ApiKeyRow>(
            `INSERT INTO api_keys (tenant_id, key_id, roles, secret_sha256, created_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, key_id) DO NOTHING RETURNING ${COLUMNS}`,
            [tenantId, request.keyId, roles, Buffer.from(request.secretSha256), request.context!.callerId],
          );
          if (!rows[0]) throw new FaceprintError(status.ALREADY_EXISTS, `the tenant already has an API key "${request.keyId}": rotate it, or revoke it and choose another id`);
          return { response: { key: apiKeyMessage(rows[0]) }, details: { key_id: request.keyId, roles: roles.join(',') } };
        });
      },

      async listApiKeys(request) {
        const tenantId = adminTenant(new RequestValidator(), request.context);
        const { rows } = await query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY key_id`, [tenantId]);
        return { keys: rows.map(apiKeyMessage) };
      },

      async rotateApiKey(request) {
        const v = new RequestValidator();
        const tenantId = adminTenant(v, request.context);
        checkKeyId(v, request.keyId);
        checkSecretHash(v, 'secret_sha256', request.secretSha256);
        v.check(request.graceSeconds <= API_KEY_ROTATION_GRACE_MAX_SECONDS, 'grace_seconds', `must be at most ${API_KEY_ROTATION_GRACE_MAX_SECONDS} (30 days)`);
        v.throwIfInvalid();
        return auditedCall(ready(), request.context, AuditAction.API_KEY_ROTATE, undefined, async () => {
          const { rows } = await query<ApiKeyRow>(
            `UPDATE api_keys SET previous_secret_sha256 = CASE WHEN $4::int > 0 THEN secret_sha256 END,
               previous_secret_expires_at = CASE WHEN $4::int > 0 THEN now() + make_interval(secs => $4::int) END,
               secret_sha256 = $3, rotated_at = now()
             WHERE tenant_id = $1 AND key_id = $2 AND revoked_at IS NULL RETURNING ${COLUMNS}`,
            [tenantId, request.keyId, Buffer.from(request.secretSha256), request.graceSeconds],
          );
          if (!rows[0]) throw notFound(request.keyId, tenantId);
          return { response: { key: apiKeyMessage(rows[0]) }, details: { key_id: request.keyId, grace_seconds: String(request.graceSeconds) } };
        });
      },

      async revokeApiKey(request) {
        const v = new RequestValidator();
        const tenantId = adminTenant(v, request.context);
        checkKeyId(v, request.keyId);
        v.throwIfInvalid();
        return auditedCall(ready(), request.context, AuditAction.API_KEY_REVOKE, undefined, async () => {
          // Idempotent: a revoked key keeps its first revocation time.
          const { rows } = await query<ApiKeyRow>(
            `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()), previous_secret_sha256 = NULL, previous_secret_expires_at = NULL
             WHERE tenant_id = $1 AND key_id = $2 RETURNING ${COLUMNS}`,
            [tenantId, request.keyId],
          );
          if (!rows[0]) throw notFound(request.keyId, tenantId);
          return { response: { key: apiKeyMessage(rows[0]) }, details: { key_id: request.keyId } };
        });
      },

      async authenticateApiKey(request) {
        const v = new RequestValidator();
        checkSecretHash(v, 'secret_sha256', request.secretSha256);
        v.throwIfInvalid();
        const valid = `(secret_sha256 = $1 OR (previous_secret_sha256 = $1 AND previous_secret_expires_at > now())) AND revoked_at IS NULL`;
        const { rows } = await query<ApiKeyRow>(
          `UPDATE api_keys SET last_used_at = now()
           WHERE ${valid} AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2::int)) RETURNING ${COLUMNS}`,
          [Buffer.from(request.secretSha256), LAST_USE_RESOLUTION_SECONDS],
        );
        const found = rows[0] ?? (await query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE ${valid}`, [Buffer.from(request.secretSha256)])).rows[0];
        // No key id or tenant in the message: the caller presented an unknown secret.
        if (!found) throw new FaceprintError(status.NOT_FOUND, 'no valid API key has this secret');
        return { key: apiKeyMessage(found) };
      },
    }),
    // Only the gateway hashes secrets and sets caller contexts.
    { callers: () => [callers.gatewayIdentity] },
  );
}
