/**
 * Opaque page tokens: where the next page starts, bound to the tenant and query that made it. A
 * token presented with another tenant or query, or altered, is INVALID_ARGUMENT. The binding is a
 * hash, not a secret: a forged token can only ever page through the caller's own tenant.
 */
import { createHash } from 'node:crypto';
import { FaceprintError } from '@faceprint/service-kit';

const bindingOf = (tenantId: string, query: string) => createHash('sha256').update(`${tenantId}\0${query}`).digest('base64url').slice(0, 16);

/** Makes the token of a page that ends at `after`. */
export function encodePageToken(tenantId: string, query: string, after: string): string {
  return Buffer.from(JSON.stringify({ b: bindingOf(tenantId, query), a: after })).toString('base64url');
}

/** The position a token names ('' for an empty token), or INVALID_ARGUMENT on `field`. */
export function decodePageToken(token: string, tenantId: string, query: string, field = 'page_token'): string {
  if (token === '') return '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const { b, a } = (parsed ?? {}) as { b?: unknown; a?: unknown };
  if (typeof b !== 'string' || typeof a !== 'string') {
    throw FaceprintError.invalidArgument([{ field, description: 'is not a page token of this service' }]);
  }
  if (b !== bindingOf(tenantId, query)) {
    throw FaceprintError.invalidArgument([{ field, description: 'belongs to another tenant or query; start again with an empty token' }]);
  }
  return a;
}
