/**
 * HTTP/2 receive windows of faceprint's gRPC servers and clients.
 *
 * Node's HTTP/2 opens every connection and stream with a 64 KiB receive window. A message larger
 * than that (an aligned 150x150 crop is 67.5 KB; an image is often megabytes) then moves one
 * window per WINDOW_UPDATE round trip, and in a busy process (ONNX Runtime's threads on every
 * core) each round trip waits for the event loop. Measured on the embedder under 64 concurrent
 * callers: its batches held 2 crops on average and throughput was about half of what it is with
 * an 8 MiB window (docs/vision.md).
 *
 * grpc-js raises a client's window with the `grpc-node.flow_control_window` channel option, but
 * its server ignores that option (grpc/grpc-node#3058, open). Until that lands, the server's
 * windows are raised here through two grpc-js internals of the pinned version (1.14.7): the HTTP/2
 * settings every session is created with, and the HTTP/2 servers whose sessions are then widened.
 * If an upgrade moves them, the functions say so (false) and the server runs with the defaults;
 * server.spec.ts checks the advertised windows, so such an upgrade fails the tests.
 */
import type { Http2Server, ServerHttp2Session, Settings } from 'node:http2';
import type { Server } from '@grpc/grpc-js';

/** The receive window of servers' connections and of clients: 8 MiB. */
export const DEFAULT_FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;

/**
 * The receive window of each stream the gateway opens: 1 MiB, above the largest small message (an
 * aligned crop) and small enough that a stream whose reading is deferred (request-byte-budget.ts)
 * holds little: Node's HTTP/2 buffers up to one stream window of an unread stream. Measured on the
 * gateway under 64 concurrent 9 MiB uploads with a 64 MiB budget (request-flood.spec.ts): peak
 * memory grew by 680 MiB with 8 MiB stream windows, by 186 MiB with 1 MiB ones. The services
 * behind it keep the connection's window per stream: their only callers are the mesh's own,
 * already under the gateway's budget, and the embedder's batches move faster with it.
 */
export const GATEWAY_STREAM_WINDOW_BYTES = 1024 * 1024;

/** The grpc-js internals used (see above). */
interface GrpcServerInternals {
  commonServerOptions?: { settings?: Settings };
  http2Servers?: Map<Http2Server, unknown>;
}

/** Before `bindAsync`: every stream of every session this server opens starts with a `bytes` window. Returns false when grpc-js no longer has the hook. */
export function setServerStreamWindow(server: Server, bytes: number): boolean {
  const internals = server as unknown as GrpcServerInternals;
  if (!internals.commonServerOptions) return false;
  internals.commonServerOptions.settings = { ...internals.commonServerOptions.settings, initialWindowSize: bytes };
  return true;
}

/** After `bindAsync`: every new session's connection window is raised to `bytes`. Returns false when grpc-js no longer has the hook. */
export function setServerConnectionWindow(server: Server, bytes: number): boolean {
  const servers = (server as unknown as GrpcServerInternals).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) return false;
  for (const http2Server of servers.keys()) {
    http2Server.on('session', (session: ServerHttp2Session) => {
      // A session that closes at once (a port probe) may refuse the update; it has nothing to receive.
      try {
        session.setLocalWindowSize(bytes);
      } catch {
        /* closed already */
      }
    });
  }
  return true;
}
