/**
 * Who is calling, by the client certificate the TLS handshake verified: the names it gives its
 * holder (its common name and DNS subject alternative names). A service can admit some methods to
 * some names only (a CallerPolicy); that needs mutual TLS, where grpc-js has already refused any
 * caller without a certificate from the trusted CA.
 */
import type { DescMethod } from '@bufbuild/protobuf';
import type { ServerCall } from './rpc-types.js';

/** The names that may call `method`, or undefined for any authenticated caller. */
export type CallerPolicy = (method: DescMethod) => readonly string[] | undefined;

/** The names in the call's verified client certificate; empty without one (plaintext, or TLS without client certificates). */
export function peerIdentity(call: ServerCall): readonly string[] {
  const certificate = call.getAuthContext().sslPeerCertificate;
  if (!certificate?.subject) return [];
  const names = new Set<string>();
  const commonName = certificate.subject.CN;
  for (const name of Array.isArray(commonName) ? commonName : commonName ? [commonName] : []) names.add(name);
  for (const entry of (certificate.subjectaltname ?? '').split(', ')) if (entry.startsWith('DNS:')) names.add(entry.slice(4));
  return [...names];
}
