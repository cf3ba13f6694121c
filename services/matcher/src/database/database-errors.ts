/**
 * A gallery database that cannot be reached (restarting, failing over, a dropped connection) is
 * UNAVAILABLE to the caller, who may retry, rather than an INTERNAL error.
 */
import { FaceprintError } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';

/** Node socket errors and SQLSTATE classes 08 (connection exception) and 57P (operator intervention). */
const UNREACHABLE_CODES = /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|08...|57P0[1-3])$/;

/** True when `error` says the database could not be reached, not that a statement was wrong. */
export function isDatabaseUnreachable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (typeof code === 'string' && UNREACHABLE_CODES.test(code)) || (typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect/.test(message));
}

/** Wraps unary handlers so that an unreachable database answers UNAVAILABLE. */
export function withDatabaseErrors<H extends object>(handlers: H): H {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      async (...args: unknown[]) => {
        try {
          return await (handler as (...a: unknown[]) => Promise<unknown>)(...args);
        } catch (error) {
          if (isDatabaseUnreachable(error)) throw new FaceprintError(status.UNAVAILABLE, 'the gallery database is unavailable; retry shortly', { cause: error });
          throw error;
        }
      },
    ]),
  ) as H;
}
