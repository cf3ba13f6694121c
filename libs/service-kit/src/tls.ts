/**
 * TLS for servers and clients, from PEM files named in the environment. A server with a
 * certificate serves TLS; with a client CA too, it requires client certificates signed by that CA
 * (mutual TLS, as services inside a cluster authenticate each other). A client trusts the CA in
 * FACEPRINT_TLS_CA_FILE and, for mutual TLS, presents its own certificate. Without any of these
 * everything is plaintext, as on loopback.
 *
 * The files are read again every FACEPRINT_TLS_RELOAD_MS (60 s), so a certificate renewed on disk
 * (cert-manager rewrites the mounted Secret before the old one expires) is used for every new
 * connection without a restart; connections already open keep the one they were made with.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { experimental, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { str } from 'envalid';
import { compileEnv, ConfigError, int } from './config.js';

/** The PEM files of one side of a TLS connection. */
export interface PemFilePaths {
  /** The certificate chain presented (with `keyFile`). */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** The CA that the other side's certificate must be signed by. */
  readonly caFile?: string;
}

/** A server's TLS settings. */
export interface ServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  readonly clientCaFile?: string;
  /** How often the files are read again. */
  readonly reloadIntervalMs: number;
}

/** What a reload of the PEM files found: new material in use, or a problem (the last good material stays in use). */
export type PemReload = { readonly changed: true } | { readonly problem: string };

const DEFAULT_RELOAD_MS = 60_000;
// A function, not a constant: config.ts imports this module, so `int` is not there yet at load time.
const reloadInterval = () => int(100, 86_400_000)({ default: DEFAULT_RELOAD_MS });

interface PemMaterial {
  readonly certificate?: Buffer;
  readonly privateKey?: Buffer;
  readonly ca?: Buffer;
}

const readPem = (path: string, variable: string): Buffer => {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError({ [variable]: `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
  }
};

const sameBytes = (a: Buffer | undefined, b: Buffer | undefined) => (a && b ? a.equals(b) : a === b);

/**
 * PEM files that grpc-js reads its certificates from, read again on a timer while a server or
 * channel uses them. Written here rather than taking grpc-js's FileWatcherCertificateProvider
 * because that one hands out "no certificate" when a read fails or the key does not fit the
 * certificate (a renewal caught half-written, a bad Secret), after which a server drops every new
 * connection; this one keeps the last good material in use and reports the problem.
 */
export class ReloadingPemFiles implements experimental.CertificateProvider {
  private material: PemMaterial;
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private timer: NodeJS.Timeout | undefined;

  /** Reads the files now: an unreadable or unusable one is a ConfigError naming `variables`' entry for it. */
  constructor(
    private readonly files: PemFilePaths,
    private readonly variables: Readonly<Record<keyof PemFilePaths, string>>,
    private readonly reloadIntervalMs: number = DEFAULT_RELOAD_MS,
    private readonly onReload: (outcome: PemReload) => void = () => {},
  ) {
    this.material = this.read();
    const problem = unusable(this.material);
    if (problem) throw new ConfigError({ [this.variables[files.certFile ? 'certFile' : 'caFile']]: problem });
  }

  /** Reads the files again; new, usable material replaces the old and is handed to the listeners. */
  reload(): void {
    let next: PemMaterial;
    try {
      next = this.read();
    } catch (error) {
      this.onReload({ problem: error instanceof ConfigError ? Object.values(error.problems).join('; ') : (error as Error).message });
      return;
    }
    const { certificate, privateKey, ca } = this.material;
    if (sameBytes(next.certificate, certificate) && sameBytes(next.privateKey, privateKey) && sameBytes(next.ca, ca)) return;
    const problem = unusable(next);
    if (problem) {
      this.onReload({ problem: `${problem}; still using the certificates read before` });
      return;
    }
    this.material = next;
    for (const listener of this.identityListeners) listener(this.identityUpdate());
    for (const listener of this.caListeners) listener(this.caUpdate());
    this.onReload({ changed: true });
  }

  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.watch();
    this.caListeners.add(listener);
    // On the next tick, as grpc-js's own providers do: a server registers its watcher after adding listeners.
    process.nextTick(listener, this.caUpdate());
  }

  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
    this.unwatchWhenUnused();
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.watch();
    this.identityListeners.add(listener);
    process.nextTick(listener, this.identityUpdate());
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
    this.unwatchWhenUnused();
  }

  private read(): PemMaterial {
    const { certFile, keyFile, caFile } = this.files;
    return {
      ...(certFile ? { certificate: readPem(certFile, this.variables.certFile) } : {}),
      ...(keyFile ? { privateKey: readPem(keyFile, this.variables.keyFile) } : {}),
      ...(caFile ? { ca: readPem(caFile, this.variables.caFile) } : {}),
    };
  }

  private identityUpdate(): experimental.IdentityCertificateUpdate | null {
    const { certificate, privateKey } = this.material;
    return certificate && privateKey ? { certificate, privateKey } : null;
  }

  private caUpdate(): experimental.CaCertificateUpdate | null {
    return this.material.ca ? { caCertificate: this.material.ca } : null;
  }

  private watch(): void {
    if (this.timer) return;
    this.reload(); // files unwatched for a while may have changed since
    this.timer = setInterval(() => this.reload(), this.reloadIntervalMs);
    this.timer.unref(); // the files being watched never keep a process alive
  }

  private unwatchWhenUnused(): void {
    if (this.caListeners.size > 0 || this.identityListeners.size > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Why `material` cannot make a TLS context (not PEM, a key that does not fit its certificate), or undefined. */
function unusable(material: PemMaterial): string | undefined {
  try {
    createSecureContext({ cert: material.certificate, key: material.privateKey, ca: material.ca });
    return undefined;
  } catch (error) {
    return `the PEM files cannot be used: ${(error as Error).message}`;
  }
}

const SERVER_VARIABLES = { certFile: 'FACEPRINT_TLS_CERT_FILE', keyFile: 'FACEPRINT_TLS_KEY_FILE', caFile: 'FACEPRINT_TLS_CLIENT_CA_FILE' } as const;
const CLIENT_VARIABLES = { certFile: 'FACEPRINT_TLS_CLIENT_CERT_FILE', keyFile: 'FACEPRINT_TLS_CLIENT_KEY_FILE', caFile: 'FACEPRINT_TLS_CA_FILE' } as const;

/**
 * The server's TLS settings: `FACEPRINT_TLS_CERT_FILE` and `FACEPRINT_TLS_KEY_FILE` (both or
 * neither), and `FACEPRINT_TLS_CLIENT_CA_FILE` for mutual TLS. Undefined: plaintext. The files
 * are read here once, so that a missing or unusable one stops the service at start-up.
 */
export function loadServerTls(env: NodeJS.ProcessEnv): ServerTls | undefined {
  const compiled = compileEnv(env, {
    FACEPRINT_TLS_CERT_FILE: str({ default: '' }),
    FACEPRINT_TLS_KEY_FILE: str({ default: '' }),
    FACEPRINT_TLS_CLIENT_CA_FILE: str({ default: '' }),
    FACEPRINT_TLS_RELOAD_MS: reloadInterval(),
  });
  const { FACEPRINT_TLS_CERT_FILE: cert, FACEPRINT_TLS_KEY_FILE: key, FACEPRINT_TLS_CLIENT_CA_FILE: clientCa } = compiled;
  if (!cert && !key) {
    if (clientCa) throw new ConfigError({ FACEPRINT_TLS_CLIENT_CA_FILE: 'needs FACEPRINT_TLS_CERT_FILE and FACEPRINT_TLS_KEY_FILE: mutual TLS is TLS first' });
    return undefined;
  }
  if (!cert || !key) throw new ConfigError({ [cert ? 'FACEPRINT_TLS_KEY_FILE' : 'FACEPRINT_TLS_CERT_FILE']: 'FACEPRINT_TLS_CERT_FILE and FACEPRINT_TLS_KEY_FILE go together' });
  const tls: ServerTls = { certFile: cert, keyFile: key, ...(clientCa ? { clientCaFile: clientCa } : {}), reloadIntervalMs: compiled.FACEPRINT_TLS_RELOAD_MS };
  new ReloadingPemFiles(serverPemFiles(tls), SERVER_VARIABLES); // reads and checks them now
  return tls;
}

const serverPemFiles = (tls: ServerTls): PemFilePaths => ({ certFile: tls.certFile, keyFile: tls.keyFile, ...(tls.clientCaFile ? { caFile: tls.clientCaFile } : {}) });

/** grpc-js server credentials for `tls` (insecure without), reloading its files; `onReload` hears of each reload that changed or failed. */
export function serverCredentials(tls: ServerTls | undefined, onReload?: (outcome: PemReload) => void): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  const files = new ReloadingPemFiles(serverPemFiles(tls), SERVER_VARIABLES, tls.reloadIntervalMs, onReload);
  return experimental.createCertificateProviderServerCredentials(files, tls.clientCaFile ? files : null, Boolean(tls.clientCaFile));
}

/**
 * A client's channel credentials: `FACEPRINT_TLS_CA_FILE` (the servers' CA) turns TLS on;
 * `FACEPRINT_TLS_CLIENT_CERT_FILE` and `FACEPRINT_TLS_CLIENT_KEY_FILE` add a client certificate
 * (mutual TLS). Undefined: plaintext. The files are read again every `FACEPRINT_TLS_RELOAD_MS`
 * while a channel uses them; a reload that fails keeps the last good files and is reported to
 * `onReload` (a process warning by default).
 */
export function clientCredentialsFromEnv(env: NodeJS.ProcessEnv, onReload: (outcome: PemReload) => void = warnOfReloadProblem): ChannelCredentials | undefined {
  const compiled = compileEnv(env, {
    FACEPRINT_TLS_CA_FILE: str({ default: '' }),
    FACEPRINT_TLS_CLIENT_CERT_FILE: str({ default: '' }),
    FACEPRINT_TLS_CLIENT_KEY_FILE: str({ default: '' }),
    FACEPRINT_TLS_RELOAD_MS: reloadInterval(),
  });
  const { FACEPRINT_TLS_CA_FILE: ca, FACEPRINT_TLS_CLIENT_CERT_FILE: cert, FACEPRINT_TLS_CLIENT_KEY_FILE: key } = compiled;
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError({ [cert ? 'FACEPRINT_TLS_CLIENT_KEY_FILE' : 'FACEPRINT_TLS_CLIENT_CERT_FILE']: 'FACEPRINT_TLS_CLIENT_CERT_FILE and FACEPRINT_TLS_CLIENT_KEY_FILE go together' });
  if (!ca) {
    if (cert) throw new ConfigError({ FACEPRINT_TLS_CA_FILE: 'a client certificate needs the servers\' CA: mutual TLS is TLS first' });
    return undefined;
  }
  const files = new ReloadingPemFiles({ caFile: ca, ...(cert ? { certFile: cert, keyFile: key } : {}) }, CLIENT_VARIABLES, compiled.FACEPRINT_TLS_RELOAD_MS, onReload);
  return experimental.createCertificateProviderChannelCredentials(files, cert ? files : null);
}

function warnOfReloadProblem(outcome: PemReload): void {
  if ('problem' in outcome) process.emitWarning(`client TLS files: ${outcome.problem}`, 'FaceprintTlsWarning');
}
