/**
 * TLS for servers and clients, from PEM files named in the environment. A server with a
 * certificate serves TLS; with a client CA too, it requires client certificates signed by that CA
 * (mutual TLS, as services inside a cluster authenticate each other). A client trusts the CA in
 * FACEPRINT_TLS_CA_FILE and, for mutual TLS, presents its own certificate. Without any of these
 * everything is plaintext, as on loopback.
 */
import { readFileSync } from 'node:fs';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { str } from 'envalid';
import { compileEnv, ConfigError } from './config.js';

/** A server's TLS material (PEM). */
export interface ServerTls {
  readonly certChain: Buffer;
  readonly privateKey: Buffer;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  readonly clientCa?: Buffer;
}

const readPem = (path: string, variable: string): Buffer => {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError({ [variable]: `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
  }
};

/**
 * The server's TLS settings: `FACEPRINT_TLS_CERT_FILE` and `FACEPRINT_TLS_KEY_FILE` (both or
 * neither), and `FACEPRINT_TLS_CLIENT_CA_FILE` for mutual TLS. Undefined: plaintext.
 */
export function loadServerTls(env: NodeJS.ProcessEnv): ServerTls | undefined {
  const compiled = compileEnv(env, {
    FACEPRINT_TLS_CERT_FILE: str({ default: '' }),
    FACEPRINT_TLS_KEY_FILE: str({ default: '' }),
    FACEPRINT_TLS_CLIENT_CA_FILE: str({ default: '' }),
  });
  const { FACEPRINT_TLS_CERT_FILE: cert, FACEPRINT_TLS_KEY_FILE: key, FACEPRINT_TLS_CLIENT_CA_FILE: clientCa } = compiled;
  if (!cert && !key) {
    if (clientCa) throw new ConfigError({ FACEPRINT_TLS_CLIENT_CA_FILE: 'needs FACEPRINT_TLS_CERT_FILE and FACEPRINT_TLS_KEY_FILE: mutual TLS is TLS first' });
    return undefined;
  }
  if (!cert || !key) throw new ConfigError({ [cert ? 'FACEPRINT_TLS_KEY_FILE' : 'FACEPRINT_TLS_CERT_FILE']: 'FACEPRINT_TLS_CERT_FILE and FACEPRINT_TLS_KEY_FILE go together' });
  return {
    certChain: readPem(cert, 'FACEPRINT_TLS_CERT_FILE'),
    privateKey: readPem(key, 'FACEPRINT_TLS_KEY_FILE'),
    ...(clientCa ? { clientCa: readPem(clientCa, 'FACEPRINT_TLS_CLIENT_CA_FILE') } : {}),
  };
}

/** grpc-js server credentials for `tls` (insecure without). */
export function serverCredentials(tls: ServerTls | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.certChain, private_key: tls.privateKey }], Boolean(tls.clientCa));
}

/**
 * A client's channel credentials: `FACEPRINT_TLS_CA_FILE` (the servers' CA) turns TLS on;
 * `FACEPRINT_TLS_CLIENT_CERT_FILE` and `FACEPRINT_TLS_CLIENT_KEY_FILE` add a client certificate
 * (mutual TLS). Undefined: plaintext.
 */
export function clientCredentialsFromEnv(env: NodeJS.ProcessEnv): ChannelCredentials | undefined {
  const compiled = compileEnv(env, {
    FACEPRINT_TLS_CA_FILE: str({ default: '' }),
    FACEPRINT_TLS_CLIENT_CERT_FILE: str({ default: '' }),
    FACEPRINT_TLS_CLIENT_KEY_FILE: str({ default: '' }),
  });
  const { FACEPRINT_TLS_CA_FILE: ca, FACEPRINT_TLS_CLIENT_CERT_FILE: cert, FACEPRINT_TLS_CLIENT_KEY_FILE: key } = compiled;
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError({ [cert ? 'FACEPRINT_TLS_CLIENT_KEY_FILE' : 'FACEPRINT_TLS_CLIENT_CERT_FILE']: 'FACEPRINT_TLS_CLIENT_CERT_FILE and FACEPRINT_TLS_CLIENT_KEY_FILE go together' });
  if (!ca) {
    if (cert) throw new ConfigError({ FACEPRINT_TLS_CA_FILE: 'a client certificate needs the servers\' CA: mutual TLS is TLS first' });
    return undefined;
  }
  return credentials.createSsl(
    readPem(ca, 'FACEPRINT_TLS_CA_FILE'),
    key ? readPem(key, 'FACEPRINT_TLS_CLIENT_KEY_FILE') : null,
    cert ? readPem(cert, 'FACEPRINT_TLS_CLIENT_CERT_FILE') : null,
  );
}
