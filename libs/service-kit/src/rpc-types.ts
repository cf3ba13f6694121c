/**
 * Types that tie protobuf-es service descriptors to handler and client signatures, in the shape
 * of connect-es's ServiceImpl. protobuf-es generates no grpc-js stubs; these types and
 * grpc-adapter.ts stand in for them.
 */
import type { DescMessage, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { Logger } from '@faceprint/telemetry';
import type { CallerPolicy } from './peer-identity.js';
import type { Metadata, ServerDuplexStream, ServerReadableStream, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';

/** Any grpc-js server call (grpc-js does not export its own union of them). */
export type ServerCall =
  | ServerUnaryCall<unknown, unknown>
  | ServerReadableStream<unknown, unknown>
  | ServerWritableStream<unknown, unknown>
  | ServerDuplexStream<unknown, unknown>;

/** What a handler knows about the call it serves. */
export interface CallContext {
  /** The full method name, e.g. `faceprint.detector.v1.DetectorService/Detect`. */
  readonly method: string;
  /** The client's deadline, if it set one. */
  readonly deadline: Date | undefined;
  /** Aborted when the client cancels or the deadline passes: stop work and return. */
  readonly signal: AbortSignal;
  /** The request metadata. */
  readonly metadata: Metadata;
  /** The peer address. */
  readonly peer: string;
  /** The names in the caller's verified client certificate; empty without mutual TLS. */
  readonly peerIdentity: readonly string[];
  /** A logger bound to this call (method and trace ids). Never log request payloads. */
  readonly log: Logger;
  /** The grpc-js call, passed as `parent` to downstream calls to propagate deadline and cancellation. */
  readonly call: ServerCall;
}

/** A unary handler: one request in, one response out. */
export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>>;

/** A server-streaming handler: one request in, a stream of responses out. */
export type ServerStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => AsyncIterable<MessageInitShape<O>>;

/** A client-streaming handler: a stream of requests in, one response out. */
export type ClientStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>>;

/** A bidirectional-streaming handler. */
export type BidiStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: CallContext,
) => AsyncIterable<MessageInitShape<O>>;

type MethodsOf<S> = S extends GenService<infer M> ? M : never;

type HandlerFor<M> = M extends { methodKind: infer K; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? K extends 'unary'
    ? UnaryHandler<I, O>
    : K extends 'server_streaming'
      ? ServerStreamingHandler<I, O>
      : K extends 'client_streaming'
        ? ClientStreamingHandler<I, O>
        : BidiStreamingHandler<I, O>
  : never;

/** The handlers of a service, keyed by method local name (`detect`, `embedStream`, ...). */
export type ServiceImpl<S extends GenService<GenServiceMethods>> = {
  [K in keyof MethodsOf<S>]: HandlerFor<MethodsOf<S>[K]>;
};

/** A service and the handlers a process has for it; missing handlers answer UNIMPLEMENTED. */
export interface ServiceRegistration {
  /** The service descriptor. */
  readonly service: DescService;
  /** Handlers by method local name. */
  readonly impl: Readonly<Record<string, unknown>>;
  /** Which certificate names may call which methods (enforced under mutual TLS; peer-identity.ts). */
  readonly callers?: CallerPolicy;
}

/** Pairs a service with (some of) its handlers, type-checked against the descriptor. */
export function implement<S extends GenService<GenServiceMethods>>(
  service: S,
  impl: Partial<ServiceImpl<S>>,
  options: { readonly callers?: CallerPolicy } = {},
): ServiceRegistration {
  return { service, impl: impl, ...(options.callers ? { callers: options.callers } : {}) };
}

/** Options of one client call. */
export interface CallOptions {
  /** The server call this call is made for: its deadline and cancellation propagate. */
  readonly parent?: CallContext;
  /** Timeout in milliseconds; default: the client's `defaultTimeoutMs`. Capped by the parent's deadline. */
  readonly timeoutMs?: number;
  /** Extra request metadata. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Cancels the call when aborted. */
  readonly signal?: AbortSignal;
}

type ClientMethodFor<M> = M extends { methodKind: infer K; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? K extends 'unary'
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : K extends 'server_streaming'
      ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
      : K extends 'client_streaming'
        ? (requests: AsyncIterable<MessageInitShape<I>>, options?: CallOptions) => Promise<MessageShape<O>>
        : (requests: AsyncIterable<MessageInitShape<I>>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
  : never;

/** A typed client: one async method per rpc; errors reject as FaceprintError. */
export type ServiceClient<S extends GenService<GenServiceMethods>> = {
  readonly [K in keyof MethodsOf<S>]: ClientMethodFor<MethodsOf<S>[K]>;
} & {
  /** Closes the channel. */
  close(): void;
};
