/**
 * Database failures as the caller and the logs see them. A database that cannot be reached
 * (restarting, failing over, a dropped connection) is UNAVAILABLE, which the caller may retry.
 * Any other database error is INTERNAL, and what is kept for the logs is its SQLSTATE and message
 * only: PostgreSQL's `detail` can quote a failing row, and a template row holds an embedding.
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

/** A database failure as the caller sees it (UNAVAILABLE or INTERNAL, without row data); any other error as it is. */
export function fromDatabaseError(error: unknown): unknown {
  if (isDatabaseUnreachable(error)) return new FaceprintError(status.UNAVAILABLE, 'the gallery database is unavailable; retry shortly', { cause: withoutRowData(error) });
  if (isDatabaseError(error)) return new FaceprintError(status.INTERNAL, 'internal error', { cause: withoutRowData(error) });
  return error;
}

/**
 * Wraps unary handlers so that database failures answer as {@link fromDatabaseError} says.
 * Streaming handlers (async generators) are left as they are: they map their own errors.
 */
export function withDatabaseErrors<H extends object>(handlers: H): H {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      (handler as { constructor: { name: string } }).constructor.name === 'AsyncGeneratorFunction'
        ? handler
        : async (...args: unknown[]) => {
            try {
              return await (handler as (...a: unknown[]) => Promise<unknown>)(...args);
            } catch (error) {
              throw fromDatabaseError(error);
            }
          },
    ]),
  ) as H;
}

/** True for an error PostgreSQL reported (it carries a SQLSTATE and a severity). */
function isDatabaseError(error: unknown): boolean {
  const { code, severity } = (error ?? {}) as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string';
}

/** The error's SQLSTATE and message, without the fields that may quote row values: what may be logged. */
export function withoutRowData(error: unknown): Error {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return new Error(`${typeof code === 'string' ? `${code}: ` : ''}${typeof message === 'string' ? message : 'database error'}`);
}
