/**
 * Typed grpc-js clients for protobuf-es services.
 *
 * - Every call has a deadline (the client's default unless the caller sets one), and a call made
 *   for a server call (`parent`) inherits that call's deadline and cancellation.
 * - Only rpcs declared `NO_SIDE_EFFECTS` or `IDEMPOTENT` in the proto are retried, on UNAVAILABLE,
 *   with exponential backoff and a retry budget (gRPC's retryThrottling), by grpc-js itself.
 * - Errors reject as FaceprintError, keeping the server's code, message and details.
 */
import { once } from 'node:events';
import { create, fromBinary, type DescMethod } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { MethodOptions_IdempotencyLevel } from '@bufbuild/protobuf/wkt';
import {
  Client,
  credentials as grpcCredentials,
  Metadata,
  propagate,
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ClientDuplexStream,
  type ClientWritableStream,
} from '@grpc/grpc-js';
import { GRPC_DEFAULT_MAX_MESSAGE_BYTES } from '@faceprint/contracts';
import { FaceprintError } from './errors.js';
import { DEFAULT_FLOW_CONTROL_WINDOW_BYTES } from './flow-control.js';
import { encodeMessage, methodPath } from './grpc-adapter.js';
import type { CallOptions, ServiceClient } from './rpc-types.js';

/** Retry settings for idempotent rpcs (gRFC A6). */
export interface RetrySettings {
  /** Attempts including the first. Default: 4. */
  readonly maxAttempts: number;
  /** Backoff before the first retry, in ms (randomised by grpc-js). Default: 100. */
  readonly initialBackoffMs: number;
  /** Backoff cap, in ms. Default: 2000. */
  readonly maxBackoffMs: number;
  /** Retry budget: tokens in the bucket (each failure costs 1, a success returns `tokenRatio`). Default: 10. */
  readonly budgetTokens: number;
  /** Tokens a successful call returns to the budget. Default: 0.1. */
  readonly tokenRatio: number;
}

/** The default retry settings. */
export const DEFAULT_RETRY: RetrySettings = Object.freeze({
  maxAttempts: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 2000,
  budgetTokens: 10,
  tokenRatio: 0.1,
});

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Channel credentials. Default: insecure (loopback and meshes with mTLS at the sidecar). */
  readonly credentials?: ChannelCredentials;
  /** Deadline of calls that set none, in ms. Default: 30000. */
  readonly defaultTimeoutMs?: number;
  /** Largest message sent or received. Default: 32 MiB. */
  readonly maxMessageBytes?: number;
  /** Retry settings for idempotent rpcs, or `false` for none. Default: {@link DEFAULT_RETRY}. */
  readonly retry?: RetrySettings | false;
  /** HTTP/2 receive window for responses (flow-control.ts). Default: {@link DEFAULT_FLOW_CONTROL_WINDOW_BYTES}. */
  readonly flowControlWindowBytes?: number;
  /**
   * With TLS: the name the server's certificate must carry (and the SNI sent), where the address
   * is not it, e.g. `localhost` for a server dialled at 127.0.0.1. Default: the address's host.
   */
  readonly serverName?: string;
}

/** True when the proto declares the rpc safe to retry. */
export function isIdempotent(method: DescMethod): boolean {
  return (
    method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
    method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT
  );
}

/** The gRPC service config that retries exactly the idempotent rpcs of `service`. */
export function retryServiceConfig(service: GenService<GenServiceMethods>, retry: RetrySettings): object {
  const idempotent = service.methods.filter(isIdempotent);
  return {
    methodConfig:
      idempotent.length === 0
        ? []
        : [
            {
              name: idempotent.map((method) => ({ service: service.typeName, method: method.name })),
              retryPolicy: {
                maxAttempts: retry.maxAttempts,
                initialBackoff: `${retry.initialBackoffMs / 1000}s`,
                maxBackoff: `${retry.maxBackoffMs / 1000}s`,
                backoffMultiplier: 2,
                retryableStatusCodes: ['UNAVAILABLE'],
              },
            },
          ],
    retryThrottling: { maxTokens: retry.budgetTokens, tokenRatio: retry.tokenRatio },
  };
}

/** Creates a typed client of `service` at `address` (`host:port`). */
export function createClient<S extends GenService<GenServiceMethods>>(
  service: S,
  address: string,
  options: ClientOptions = {},
): ServiceClient<S> {
  const maxMessageBytes = options.maxMessageBytes ?? GRPC_DEFAULT_MAX_MESSAGE_BYTES;
  const retry = options.retry ?? DEFAULT_RETRY;
  const client = new Client(address, options.credentials ?? grpcCredentials.createInsecure(), {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.enable_retries': retry ? 1 : 0,
    'grpc-node.flow_control_window': options.flowControlWindowBytes ?? DEFAULT_FLOW_CONTROL_WINDOW_BYTES,
    ...(options.serverName ? { 'grpc.ssl_target_name_override': options.serverName } : {}),
    ...(retry ? { 'grpc.service_config': JSON.stringify(retryServiceConfig(service, retry)) } : {}),
  });
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;

  const callArgs = (method: DescMethod, callOptions: CallOptions = {}) => {
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(callOptions.metadata ?? {})) metadata.set(key, value);
    const grpcOptions: GrpcCallOptions = {
      deadline: Date.now() + (callOptions.timeoutMs ?? defaultTimeoutMs),
      ...(callOptions.parent
        ? { parent: callOptions.parent.call, propagate_flags: propagate.DEFAULTS }
        : {}),
    };
    return {
      path: methodPath(method),
      serialize: (message: unknown) => encodeMessage(method.input, create(method.input, message as never)),
      deserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
      metadata,
      grpcOptions,
    };
  };

  const cancelOnAbort = (signal: AbortSignal | undefined, cancel: () => void) => {
    if (!signal) return () => undefined;
    if (signal.aborted) cancel();
    signal.addEventListener('abort', cancel, { once: true });
    return () => signal.removeEventListener('abort', cancel);
  };

  const pump = async (requests: AsyncIterable<unknown>, call: ClientWritableStream<unknown> | ClientDuplexStream<unknown, unknown>) => {
    try {
      for await (const request of requests) {
        if (!call.write(request)) await once(call, 'drain');
      }
      call.end();
    } catch (error) {
      call.cancel();
      throw error;
    }
  };

  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    switch (method.methodKind) {
      case 'unary':
        methods[method.localName] = (request: unknown, callOptions?: CallOptions) =>
          new Promise((resolve, reject) => {
            const a = callArgs(method, callOptions);
            const call = client.makeUnaryRequest(a.path, a.serialize, a.deserialize, request, a.metadata, a.grpcOptions, (error, response) => {
              release();
              if (error) reject(FaceprintError.from(error));
              else resolve(response);
            });
            const release = cancelOnAbort(callOptions?.signal, () => call.cancel());
          });
        break;
      case 'server_streaming':
        methods[method.localName] = (request: unknown, callOptions?: CallOptions) => {
          const a = callArgs(method, callOptions);
          const call = client.makeServerStreamRequest(a.path, a.serialize, a.deserialize, request, a.metadata, a.grpcOptions);
          return rejectingAsFaceprintErrors(call, cancelOnAbort(callOptions?.signal, () => call.cancel()));
        };
        break;
      case 'client_streaming':
        methods[method.localName] = (requests: AsyncIterable<unknown>, callOptions?: CallOptions) =>
          new Promise((resolve, reject) => {
            const a = callArgs(method, callOptions);
            const call = client.makeClientStreamRequest(a.path, a.serialize, a.deserialize, a.metadata, a.grpcOptions, (error, response) => {
              release();
              if (error) reject(FaceprintError.from(error));
              else resolve(response);
            });
            const release = cancelOnAbort(callOptions?.signal, () => call.cancel());
            pump(requests, call).catch(reject);
          });
        break;
      case 'bidi_streaming':
        methods[method.localName] = (requests: AsyncIterable<unknown>, callOptions?: CallOptions) => {
          const a = callArgs(method, callOptions);
          const call = client.makeBidiStreamRequest(a.path, a.serialize, a.deserialize, a.metadata, a.grpcOptions);
          pump(requests, call).catch(() => undefined); // the read side reports the failure
          return rejectingAsFaceprintErrors(call, cancelOnAbort(callOptions?.signal, () => call.cancel()));
        };
        break;
    }
  }
  methods.close = () => client.close();
  return methods as ServiceClient<S>;
}

/** Iterates a response stream, turning its gRPC errors into FaceprintErrors. */
async function* rejectingAsFaceprintErrors<T>(stream: AsyncIterable<T>, release: () => void): AsyncIterable<T> {
  try {
    for await (const message of stream) yield message;
  } catch (error) {
    throw FaceprintError.from(error);
  } finally {
    release();
  }
}
