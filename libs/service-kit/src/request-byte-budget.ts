/**
 * A per-process budget of request bytes in flight: a server interceptor that defers reading a
 * request message until the budget has room for it, so many concurrent large requests (64 callers
 * each sending a 9 MiB image) wait their turn instead of all being read into memory at once.
 *
 * grpc-js leaves a call's HTTP/2 stream paused until the handler asks to read (`startRead`), so
 * deferring that call defers the bytes: an unread stream holds at most its HTTP/2 receive window
 * (flow-control.ts) per connection.
 *
 * - A unary request's size is unknown until it has been read, so its read reserves the largest
 *   message the server accepts; when the message arrives the reservation shrinks to the message's
 *   real size, which stays charged until the call ends (the handler holds its request until then).
 * - A streaming request reads while the budget is not spent and charges each message as it
 *   arrives, until the handler asks for the next one. It reserves nothing ahead, so an idle
 *   stream holds none of the budget; the budget can then be overrun by one message per stream.
 *
 * Health and reflection are exempt: probes must answer while the budget is spent.
 */
import { ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor, type ServerListener } from '@grpc/grpc-js';

/** The size in bytes of each request message as it arrived, recorded by the deserialiser (grpc-adapter.ts). */
const receivedBytes = new WeakMap<object, number>();

/** Records that `message` was decoded from `bytes` bytes. */
export function recordReceivedBytes(message: object, bytes: number): void {
  receivedBytes.set(message, bytes);
}

/** Bytes handed out first come, first served; one request larger than the whole budget runs alone. */
export class ByteBudget {
  readonly limit: number;
  #used = 0;
  readonly #waiting: { bytes: number; grant: () => void }[] = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes reserved or held now. */
  get used(): number {
    return this.#used;
  }

  /** Calls `grant` once `bytes` fit (at once if they do now); returns a function that withdraws a request not yet granted. */
  reserve(bytes: number, grant: () => void): () => void {
    const request = { bytes, grant };
    if (this.#waiting.length === 0 && this.#fits(bytes)) {
      this.#used += bytes;
      grant();
      return () => {};
    }
    this.#waiting.push(request);
    return () => {
      const at = this.#waiting.indexOf(request);
      if (at >= 0) this.#waiting.splice(at, 1);
      this.#grantWaiting();
    };
  }

  /** Takes `bytes` at once, waiting or not (a streamed message already read). */
  charge(bytes: number): void {
    this.#used += bytes;
  }

  /** Gives back `bytes` reserved earlier, granting waiting requests that now fit. */
  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
    this.#grantWaiting();
  }

  #fits(bytes: number): boolean {
    return this.#used + bytes <= this.limit || this.#used === 0;
  }

  #grantWaiting(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!.bytes)) {
      const next = this.#waiting.shift()!;
      this.#used += next.bytes;
      next.grant();
    }
  }
}

/** Methods that never wait for the budget. */
const EXEMPT = /^\/grpc\.(health|reflection)\./;

/**
 * The interceptor: a unary request's read waits for `reserveBytes` (the largest message the
 * server accepts) of `budget`; a streamed one waits until the budget is not spent. Each message's
 * real size is kept until it is done with.
 */
export function requestByteBudget(budget: ByteBudget, reserveBytes: number): ServerInterceptor {
  return (method, call) => {
    if (EXEMPT.test(method.path)) return new ServerInterceptingCall(call);
    return new BudgetedCall(call, budget, Math.min(reserveBytes, budget.limit), method.requestStream);
  };
}

/** One call under the budget. */
class BudgetedCall extends ServerInterceptingCall {
  readonly #budget: ByteBudget;
  readonly #reserveBytes: number;
  readonly #streaming: boolean;
  /** Bytes this call holds of the budget: a pending unary read's reservation, or received messages. */
  #held = 0;
  #messages = 0;
  #withdraw: (() => void) | undefined;
  #ended = false;

  constructor(call: ServerInterceptingCallInterface, budget: ByteBudget, reserveBytes: number, streaming: boolean) {
    const listener: ServerListener = {
      onReceiveMessage: (message: object, next) => this.#received(receivedBytes.get(message) ?? 0, () => next(message)),
      onReceiveHalfClose: (next) => {
        // A unary read that found the end of the stream, not a message, needs no reservation.
        if (!this.#streaming && this.#messages === 0) this.#giveBack(this.#held);
        next();
      },
      onCancel: () => this.#end(),
    };
    super(call, {
      start: (next) => next(listener),
      sendStatus: (status, next) => {
        this.#end();
        next(status);
      },
    });
    this.#budget = budget;
    this.#reserveBytes = reserveBytes;
    this.#streaming = streaming;
  }

  override startRead(): void {
    if (this.#ended) return;
    if (!this.#streaming && this.#messages > 0) {
      super.startRead(); // the read that sees a unary request's end: nothing more to hold
      return;
    }
    // On a stream, asking for the next message means the handler is done with the last one.
    if (this.#streaming) this.#giveBack(this.#held);
    const reserve = this.#streaming ? 0 : this.#reserveBytes;
    this.#withdraw = this.#budget.reserve(reserve, () => {
      this.#withdraw = undefined;
      this.#held += reserve;
      super.startRead();
    });
  }

  #received(size: number, pass: () => void): void {
    this.#messages += 1;
    if (this.#streaming) {
      this.#budget.charge(size);
      this.#held += size;
    } else {
      this.#giveBack(Math.max(0, this.#held - size)); // the reservation shrinks to the real size
    }
    pass();
  }

  #giveBack(bytes: number): void {
    if (bytes <= 0) return;
    this.#held -= bytes;
    this.#budget.release(bytes);
  }

  /** The call is over (answered or cancelled): a waiting read is withdrawn and everything held returned. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#withdraw?.();
    this.#withdraw = undefined;
    this.#giveBack(this.#held);
  }
}
