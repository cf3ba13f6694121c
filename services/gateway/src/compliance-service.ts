/**
 * The public compliance API (faceprint.gateway.v1.ComplianceService): erasure, export and the
 * audit trail, forwarded to the matcher with the caller's tenant and roles once the API key is
 * checked for the `compliance` role (the matcher checks the role again); and the public keys that
 * receipts and decision records are signed with, for any valid key.
 */
import { ComplianceService } from '@faceprint/contracts/gateway';
import { implement, type ServiceRegistration } from '@faceprint/service-kit';
import { authorize, type ApiKeys } from './auth/api-keys.js';
import type { Downstream } from './downstream.js';

/** A message's fields without its type name: the gateway's and the matcher's messages share their fields. */
function fields<T extends { $typeName: string; $unknown?: unknown }>(message: T): Omit<T, '$typeName' | '$unknown'> {
  const { $typeName: _type, $unknown: _unknown, ...rest } = message;
  return rest;
}

/** The ComplianceService of the gateway. */
export function complianceService(downstream: Downstream, keys: ApiKeys): ServiceRegistration {
  const { compliance } = downstream;
  return implement(ComplianceService, {
    async eraseSubject(request, ctx) {
      const context = await authorize(keys, ctx, 'compliance');
      return fields(await compliance.eraseSubject({ context, ...fields(request) }, { parent: ctx }));
    },
    async exportSubject(request, ctx) {
      const context = await authorize(keys, ctx, 'compliance');
      return fields(await compliance.exportSubject({ context, ...fields(request) }, { parent: ctx }));
    },
    async listAuditEvents(request, ctx) {
      const context = await authorize(keys, ctx, 'compliance');
      return fields(await compliance.listAuditEvents({ context, ...fields(request) }, { parent: ctx }));
    },
    // Public keys, for whoever holds a receipt or a decision record: any valid API key may ask.
    async getPublicKeys(_request, ctx) {
      await keys.authenticate(ctx.metadata);
      return fields(await compliance.getPublicKeys({}, { parent: ctx }));
    },
  });
}
