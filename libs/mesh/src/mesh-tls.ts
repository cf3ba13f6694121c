/**
 * Mutual TLS for the local mesh: a private certificate authority made at the first start
 * (mesh-certificates.ts), and a certificate for each service and one for the faceprint command,
 * so that the services accept calls only from each other (a local process without a certificate
 * is refused at the TLS handshake, and the matcher takes caller context only from the gateway's
 * certificate). This file knows where they are and how each process uses them.
 *
 * Stored under FACEPRINT_MESH_TLS_DIR (default `<repo>/data/mesh-tls`), private keys mode 0600.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceName } from '@faceprint/contracts';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { REPO_ROOT } from './service-process.js';

/** Where the local mesh keeps its certificates unless FACEPRINT_MESH_TLS_DIR says otherwise. */
export const DEFAULT_MESH_TLS_DIR = join(REPO_ROOT, 'data', 'mesh-tls');

/** Who holds a mesh certificate: a service, or the faceprint command (its calls to the trainer). */
export type MeshIdentity = ServiceName | 'cli';

/** The mesh's certificate files. */
export class MeshTls {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** The CA certificate every service trusts. */
  get caFile(): string {
    return join(this.dir, 'ca.pem');
  }

  certFile(identity: MeshIdentity): string {
    return join(this.dir, `${identity}.pem`);
  }

  keyFile(identity: MeshIdentity): string {
    return join(this.dir, `${identity}.key`);
  }

  /**
   * The TLS variables of a service: it serves mutual TLS (client certificates from the mesh CA
   * required) and presents its own certificate when it calls another. The gateway serves its
   * public API without TLS on loopback (callers authenticate with API keys) and calls with TLS.
   */
  serviceEnv(name: ServiceName): Record<string, string> {
    const client = { FACEPRINT_TLS_CA_FILE: this.caFile, FACEPRINT_TLS_CLIENT_CERT_FILE: this.certFile(name), FACEPRINT_TLS_CLIENT_KEY_FILE: this.keyFile(name) };
    if (name === 'gateway') return client;
    return { ...client, FACEPRINT_TLS_CERT_FILE: this.certFile(name), FACEPRINT_TLS_KEY_FILE: this.keyFile(name), FACEPRINT_TLS_CLIENT_CA_FILE: this.caFile };
  }

  /** Channel credentials that present `identity`'s certificate. */
  async credentials(identity: MeshIdentity): Promise<ChannelCredentials> {
    const [ca, key, cert] = await Promise.all([readFile(this.caFile), readFile(this.keyFile(identity)), readFile(this.certFile(identity))]);
    return credentials.createSsl(ca, key, cert);
  }
}
