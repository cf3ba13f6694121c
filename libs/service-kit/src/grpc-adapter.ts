/**
 * The protobuf-es -> grpc-js adapter. protobuf-es v2 ships no grpc-js generator, so each method
 * of a DescService becomes a grpc-js MethodDefinition (path `/<service>/<method>`, streaming flags
 * from `methodKind`, binary (de)serialisation), and each handler is wrapped so that it sees a
 * CallContext and its errors become gRPC statuses with google.rpc details.
 */
import { once } from 'node:events';
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from '@bufbuild/protobuf';
import type { Logger } from '@faceprint/telemetry';
import {
  status,
  type handleBidiStreamingCall,
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type MethodDefinition,
  type ServerDuplexStream,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import { FaceprintError } from './errors.js';
import { peerIdentity } from './peer-identity.js';
import { recordReceivedBytes } from './request-byte-budget.js';
import type { CallContext, ServerCall, ServiceRegistration } from './rpc-types.js';

/** The grpc-js path of a method: `/<package>.<Service>/<Method>`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/**
 * A message as the bytes grpc-js sends. toBinary returns an array of its own, so the Buffer is a
 * view of it rather than a copy: one copy less of every message (an aligned crop is 67.5 KB).
 */
export function encodeMessage<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Buffer {
  const bytes = toBinary(schema, message);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The grpc-js definition of a protobuf-es service. */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (message) => encodeMessage(method.input, message as never),
      requestDeserialize: (bytes) => {
        const message = fromBinary(method.input, bytes);
        recordReceivedBytes(message, bytes.byteLength);
        return message;
      },
      responseSerialize: (message) => encodeMessage(method.output, message as never),
      responseDeserialize: (bytes) => fromBinary(method.output, bytes),
      originalName: method.localName,
    };
  }
  return definition;
}

/** Called once per finished call, for metrics. */
export type CallObserver = (method: DescMethod, code: status, durationMs: number) => void;

/** What the wrapped handlers need from the server. */
export interface HandlerDeps {
  /** The process logger; each call gets a child. */
  readonly log: Logger;
  /** Records the outcome of each call. */
  readonly observe: CallObserver;
  /** The server requires client certificates: the registration's caller policy is enforced. */
  readonly mutualTls: boolean;
}

/** Wraps every method of a registration as a grpc-js handler; missing ones answer UNIMPLEMENTED. */
export function grpcHandlers(registration: ServiceRegistration, deps: HandlerDeps): Record<string, UntypedHandleCall> {
  const handlers: Record<string, UntypedHandleCall> = {};
  for (const method of registration.service.methods) {
    const impl = registration.impl[method.localName];
    const handler =
      typeof impl === 'function'
        ? (impl as (...args: unknown[]) => unknown)
        : () => {
            throw FaceprintError.unimplemented(`${method.parent.typeName}/${method.name}`);
          };
    const allowed = deps.mutualTls ? registration.callers?.(method) : undefined;
    handlers[method.localName] = wrapHandler(method, allowed ? admitOnly(method, allowed, handler) : handler, deps);
  }
  return handlers;
}

/** `handler`, refusing callers whose certificate names none of `allowed`. */
function admitOnly(method: DescMethod, allowed: readonly string[], handler: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
  return (...args: unknown[]) => {
    const ctx = args[1] as CallContext;
    if (!ctx.peerIdentity.some((name) => allowed.includes(name))) {
      throw new FaceprintError(
        status.PERMISSION_DENIED,
        `${method.parent.typeName}/${method.name} accepts calls only from ${allowed.join(' or ')}; this caller's certificate names ${ctx.peerIdentity.join(', ') || 'no one'}`,
      );
    }
    return handler(...args);
  };
}

/** Builds the CallContext of a server call; `finish` releases its deadline timer. */
function callContext(method: DescMethod, call: ServerCall, log: Logger): { ctx: CallContext; finish: () => void } {
  const controller = new AbortController();
  const deadlineValue = call.getDeadline();
  const deadline =
    deadlineValue instanceof Date ? deadlineValue : Number.isFinite(deadlineValue) ? new Date(deadlineValue) : undefined;
  const onCancelled = () => controller.abort(new FaceprintError(status.CANCELLED, 'call cancelled by the client'));
  const events = call as NodeJS.EventEmitter; // every server call emits 'cancelled'
  // Each downstream call made with this call as its parent listens for its cancellation: a
  // gateway enrolment of 10 images makes 31 of them. Bounded by the request, not a leak.
  events.setMaxListeners(64);
  events.once('cancelled', onCancelled);
  const timer =
    deadline &&
    setTimeout(() => controller.abort(new FaceprintError(status.DEADLINE_EXCEEDED, 'deadline exceeded')), Math.max(0, deadline.getTime() - Date.now()));
  const name = `${method.parent.typeName}/${method.name}`;
  let identity: readonly string[] | undefined;
  const ctx: CallContext = {
    method: name,
    deadline,
    signal: controller.signal,
    metadata: call.metadata,
    peer: call.getPeer(),
    // Read from the TLS socket only when asked (a caller policy), not on every call of a hot path.
    get peerIdentity() {
      return (identity ??= peerIdentity(call));
    },
    log: log.child({ rpc: name }),
    call,
  };
  const finish = () => {
    if (timer) clearTimeout(timer);
    events.removeListener('cancelled', onCancelled);
  };
  return { ctx, finish };
}

/**
 * grpc-js words a failed connection to another service with that service's internal address and
 * resolver notes ("No connection established. Last error: ... Resolution note: ..."). Passed on,
 * that would tell callers about the inside of the mesh: they get a plain UNAVAILABLE instead, and
 * the log keeps the original (the error's cause).
 */
const CONNECTION_FAILURE = /^(No connection established|Connection dropped|Name resolution failed|Failed to connect)/i;
function withoutTransportDetails(error: FaceprintError): FaceprintError {
  if (error.code !== status.UNAVAILABLE || !CONNECTION_FAILURE.test(error.message)) return error;
  return new FaceprintError(status.UNAVAILABLE, 'a service this call needs cannot be reached right now; retry later', { cause: error });
}

/** Logs a failed call: internal causes at error level (server side only), client errors at debug. */
function logFailure(ctx: CallContext, error: FaceprintError): void {
  const serverFault = [status.INTERNAL, status.UNKNOWN, status.DATA_LOSS].includes(error.code);
  if (serverFault) {
    ctx.log.error({ code: status[error.code], err: error.cause ?? error }, 'rpc failed');
  } else {
    ctx.log.debug({ code: status[error.code], reason: error.message, ...(error.cause instanceof FaceprintError ? { cause: error.cause.message } : {}) }, 'rpc failed');
  }
}

/**
 * The request stream of a call as an async iterable that leaves the call open when the loop ends:
 * the default iterator destroys the whole duplex, and with it the response side.
 */
function requestsOf(call: NodeJS.ReadableStream & { iterator(options: { destroyOnReturn: boolean }): AsyncIterable<unknown> }): AsyncIterable<unknown> {
  return call.iterator({ destroyOnReturn: false });
}

function wrapHandler(method: DescMethod, handler: (...args: unknown[]) => unknown, deps: HandlerDeps): UntypedHandleCall {
  const run = async <T>(call: ServerCall, body: (ctx: CallContext) => Promise<T>): Promise<{ ok: T } | { error: FaceprintError }> => {
    const started = performance.now();
    const { ctx, finish } = callContext(method, call, deps.log);
    try {
      const ok = await body(ctx);
      deps.observe(method, status.OK, performance.now() - started);
      return { ok };
    } catch (thrown) {
      const error = withoutTransportDetails(FaceprintError.from(ctx.signal.aborted && !(thrown instanceof FaceprintError) ? ctx.signal.reason : thrown));
      logFailure(ctx, error);
      deps.observe(method, error.code, performance.now() - started);
      return { error };
    } finally {
      finish();
    }
  };

  const writeAll = async (call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>, ctx: CallContext, responses: AsyncIterable<unknown>) => {
    for await (const response of responses) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (!call.write(create(method.output, response as never))) await once(call, 'drain', { signal: ctx.signal });
    }
  };

  switch (method.methodKind) {
    case 'unary': {
      const unary: handleUnaryCall<unknown, unknown> = (call, callback) => {
        void run(call, async (ctx) => create(method.output, (await handler(call.request, ctx)) as never)).then((result) =>
          'ok' in result ? callback(null, result.ok) : callback(result.error.toStatus()),
        );
      };
      return unary;
    }
    case 'server_streaming': {
      const serverStreaming: handleServerStreamingCall<unknown, unknown> = (call) => {
        void run(call, (ctx) => writeAll(call, ctx, handler(call.request, ctx) as AsyncIterable<unknown>)).then((result) =>
          'ok' in result ? call.end() : call.emit('error', result.error.toStatus()),
        );
      };
      return serverStreaming;
    }
    case 'client_streaming': {
      const clientStreaming: handleClientStreamingCall<unknown, unknown> = (call, callback) => {
        void run(call, async (ctx) => create(method.output, (await handler(requestsOf(call), ctx)) as never)).then((result) =>
          'ok' in result ? callback(null, result.ok) : callback(result.error.toStatus()),
        );
      };
      return clientStreaming;
    }
    case 'bidi_streaming': {
      const bidi: handleBidiStreamingCall<unknown, unknown> = (call) => {
        void run(call, (ctx) => writeAll(call, ctx, handler(requestsOf(call), ctx) as AsyncIterable<unknown>)).then((result) =>
          'ok' in result ? call.end() : call.emit('error', result.error.toStatus()),
        );
      };
      return bidi;
    }
  }
}
