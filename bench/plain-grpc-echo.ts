/**
 * A bare grpc-js server with one unary method, `/bench.Echo/Echo`, that answers its request bytes:
 * no protobuf, no telemetry, no faceprint code. bench/vision.ts runs it as a process of its own and
 * times calls to it beside calls to the services, which tells the cost of a call that belongs to
 * grpc-js and the machine apart from faceprint's. Prints its port on stdout; stops on SIGTERM.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';

const asIs = (bytes: Buffer) => bytes;
const server = new Server();
server.addService(
  { echo: { path: '/bench.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: asIs, requestDeserialize: asIs, responseSerialize: asIs, responseDeserialize: asIs } },
  { echo: (call: { request: Buffer }, callback: (error: null, response: Buffer) => void) => callback(null, call.request) },
);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`${port}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
