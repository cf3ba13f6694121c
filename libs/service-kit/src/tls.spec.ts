/**
 * TLS and mutual TLS with certificates made for the test by openssl: a CA, a server certificate
 * for 127.0.0.1, and a client certificate. A client that trusts the CA and presents its
 * certificate is served; one without a certificate, or in plaintext, is not. Certificates renewed
 * on disk are used by new connections without a restart; a broken renewal is not.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { DetectorService } from '@faceprint/contracts/detector';
import { Health, HealthCheckResponse_ServingStatus } from '@faceprint/contracts/health';
import { status } from '@grpc/grpc-js';
import { createClient } from './client.js';
import { type ConfigError, loadServerConfig } from './config.js';
import { implement } from './rpc-types.js';
import { memoryLogger, startTestServer } from './test-support.js';
import { clientCredentialsFromEnv } from './tls.js';

const dir = mkdtempSync(join(tmpdir(), 'faceprint-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

/** A self-signed CA in `${name}.pem` and `${name}.key`. */
const makeCa = (name: string) =>
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=faceprint test ${name}`);

/** A certificate for `name` (with the given subjectAltName) signed by `ca`, in `${name}.pem` and `${name}.key`. */
function issue(name: string, san: string, ca = 'ca'): void {
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(file(`${name}.ext`), `subjectAltName=${san}\n`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
}

function makeCertificates(): void {
  makeCa('ca');
  issue('server', 'IP:127.0.0.1,DNS:localhost');
  issue('client', 'DNS:gateway.faceprint.test');
}

/** Puts `from`'s certificate and key in place of `to`'s the way a Secret volume is updated: each file replaced whole. */
function replaceCertificate(from: string, to: string): void {
  for (const extension of ['key', 'pem']) {
    copyFileSync(file(`${from}.${extension}`), file(`${to}.${extension}.new`));
    renameSync(file(`${to}.${extension}.new`), file(`${to}.${extension}`));
  }
}

/** The serial number of the certificate a new TLS connection to `port` is served. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ALPNProtocols: ['h2'], ca: readFileSync(file('ca.pem')), cert: readFileSync(file('client.pem')), key: readFileSync(file('client.key')) }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

async function eventually(what: string, condition: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) if (await condition()) return;
  assert.fail(`not within 10 s: ${what}`);
}

describe('TLS', () => {
  makeCertificates();
  const serverEnv = { FACEPRINT_TLS_CERT_FILE: file('server.pem'), FACEPRINT_TLS_KEY_FILE: file('server.key'), FACEPRINT_TLS_CLIENT_CA_FILE: file('ca.pem') };
  const check = async (address: string, env: Record<string, string>, serverName?: string) => {
    const credentials = clientCredentialsFromEnv(env);
    const health = createClient(Health, address, { retry: false, defaultTimeoutMs: 3_000, ...(credentials ? { credentials } : {}), ...(serverName ? { serverName } : {}) });
    try {
      return (await health.check({})).status;
    } finally {
      health.close();
    }
  };

  it('answers health alone in plaintext on FACEPRINT_HEALTH_PORT, for probes, while the service itself takes mutual TLS only', async () => {
    const server = await startTestServer([implement(DetectorService, {})], { ...serverEnv, FACEPRINT_HEALTH_PORT: '0' });
    try {
      const probe = `127.0.0.1:${server.healthPort}`;
      assert.equal(await check(probe, {}), HealthCheckResponse_ServingStatus.NOT_SERVING, 'not ready yet');
      server.setServing(true);
      assert.equal(await check(probe, {}), HealthCheckResponse_ServingStatus.SERVING);
      const detector = createClient(DetectorService, probe, { retry: false, defaultTimeoutMs: 3_000 });
      try {
        await assert.rejects(detector.detect({}), (error: { code?: number }) => error.code === status.UNIMPLEMENTED, 'the health port serves nothing else');
      } finally {
        detector.close();
      }
      await assert.rejects(check(server.address, {}), 'the service port still takes mutual TLS only');
    } finally {
      await server.shutdown();
    }
  });

  it('serves mutual TLS to a client with a certificate from the CA, and refuses the others', async () => {
    const server = await startTestServer([implement(DetectorService, {})], serverEnv);
    server.setServing(true);
    try {
      const withCertificate = { FACEPRINT_TLS_CA_FILE: file('ca.pem'), FACEPRINT_TLS_CLIENT_CERT_FILE: file('client.pem'), FACEPRINT_TLS_CLIENT_KEY_FILE: file('client.key') };
      assert.equal(await check(server.address, withCertificate), HealthCheckResponse_ServingStatus.SERVING);
      // Dialled at 127.0.0.1, checked against another name the certificate carries; a name it lacks fails.
      assert.equal(await check(server.address, withCertificate, 'localhost'), HealthCheckResponse_ServingStatus.SERVING);
      await assert.rejects(check(server.address, withCertificate, 'elsewhere.test'), 'a name the certificate does not carry');
      await assert.rejects(check(server.address, { FACEPRINT_TLS_CA_FILE: file('ca.pem') }), 'no client certificate');
      await assert.rejects(check(server.address, {}), 'plaintext');
    } finally {
      await server.shutdown();
    }
  });

  it('serves TLS without client certificates when no client CA is set', async () => {
    const server = await startTestServer([implement(DetectorService, {})], { FACEPRINT_TLS_CERT_FILE: file('server.pem'), FACEPRINT_TLS_KEY_FILE: file('server.key') });
    server.setServing(true);
    try {
      assert.equal(await check(server.address, { FACEPRINT_TLS_CA_FILE: file('ca.pem') }), HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      await server.shutdown();
    }
  });

  it('names the variable of an incomplete or unreadable TLS setting', () => {
    assert.throws(() => loadServerConfig('gateway', { FACEPRINT_TLS_CERT_FILE: file('server.pem') }), (error: ConfigError) => 'FACEPRINT_TLS_KEY_FILE' in error.problems);
    assert.throws(() => loadServerConfig('gateway', { FACEPRINT_TLS_CLIENT_CA_FILE: file('ca.pem') }), (error: ConfigError) => 'FACEPRINT_TLS_CLIENT_CA_FILE' in error.problems);
    assert.throws(() => loadServerConfig('gateway', { FACEPRINT_TLS_CERT_FILE: file('missing.pem'), FACEPRINT_TLS_KEY_FILE: file('server.key') }), (error: ConfigError) => /cannot read/.test(error.problems.FACEPRINT_TLS_CERT_FILE ?? ''));
    assert.throws(() => clientCredentialsFromEnv({ FACEPRINT_TLS_CLIENT_CERT_FILE: file('client.pem') }), (error: ConfigError) => 'FACEPRINT_TLS_CLIENT_KEY_FILE' in error.problems);
    writeFileSync(file('not-pem.pem'), 'not a certificate');
    assert.throws(() => loadServerConfig('gateway', { FACEPRINT_TLS_CERT_FILE: file('not-pem.pem'), FACEPRINT_TLS_KEY_FILE: file('server.key') }), (error: ConfigError) => /cannot be used/.test(error.problems.FACEPRINT_TLS_CERT_FILE ?? ''));
    assert.throws(() => loadServerConfig('gateway', { FACEPRINT_TLS_CERT_FILE: file('server.pem'), FACEPRINT_TLS_KEY_FILE: file('client.key') }), (error: ConfigError) => /cannot be used/.test(error.problems.FACEPRINT_TLS_CERT_FILE ?? ''), 'a key that is not the certificate\'s');
  });

  it('serves a certificate renewed on disk to new connections without a restart, and keeps the last good one through a broken renewal', async () => {
    issue('renewed-server', 'IP:127.0.0.1,DNS:localhost');
    copyFileSync(file('server.pem'), file('live-server.pem'));
    copyFileSync(file('server.key'), file('live-server.key'));
    const logs = memoryLogger();
    const env = { FACEPRINT_TLS_CERT_FILE: file('live-server.pem'), FACEPRINT_TLS_KEY_FILE: file('live-server.key'), FACEPRINT_TLS_CLIENT_CA_FILE: file('ca.pem'), FACEPRINT_TLS_RELOAD_MS: '100' };
    const server = await startTestServer([implement(DetectorService, {})], env, logs.log);
    server.setServing(true);
    const port = Number(server.address.split(':').at(-1));
    const withCertificate = { FACEPRINT_TLS_CA_FILE: file('ca.pem'), FACEPRINT_TLS_CLIENT_CERT_FILE: file('client.pem'), FACEPRINT_TLS_CLIENT_KEY_FILE: file('client.key') };
    try {
      const first = await servedSerial(port);
      // The key is replaced before the certificate: in between the pair does not fit, and that read is refused.
      replaceCertificate('renewed-server', 'live-server');
      await eventually('the renewed certificate is served', async () => (await servedSerial(port)) !== first);
      const renewed = await servedSerial(port);
      assert.equal(await check(server.address, withCertificate), HealthCheckResponse_ServingStatus.SERVING);

      const problems = () => logs.lines().filter((line) => line.msg === 'TLS files could not be reloaded' && /cannot be used/.test(String(line.problem))).length;
      const problemsBefore = problems();
      writeFileSync(file('live-server.pem.new'), 'half a certificate');
      renameSync(file('live-server.pem.new'), file('live-server.pem'));
      await eventually('the broken renewal is reported', async () => problems() > problemsBefore);
      assert.equal(await servedSerial(port), renewed, 'the last good certificate is still served');
      assert.equal(await check(server.address, withCertificate), HealthCheckResponse_ServingStatus.SERVING);
      assert.ok(logs.lines().some((line) => line.msg === 'TLS certificates reloaded: new connections use them'));
    } finally {
      await server.shutdown();
    }
  });

  it('presents a client certificate renewed on disk on new connections without a restart', async () => {
    makeCa('other-ca');
    issue('foreign-client', 'DNS:gateway.faceprint.test', 'other-ca');
    copyFileSync(file('client.pem'), file('live-client.pem'));
    copyFileSync(file('client.key'), file('live-client.key'));
    const server = await startTestServer([implement(DetectorService, {})], serverEnv);
    server.setServing(true);
    const credentials = clientCredentialsFromEnv({ FACEPRINT_TLS_CA_FILE: file('ca.pem'), FACEPRINT_TLS_CLIENT_CERT_FILE: file('live-client.pem'), FACEPRINT_TLS_CLIENT_KEY_FILE: file('live-client.key'), FACEPRINT_TLS_RELOAD_MS: '100' });
    assert.ok(credentials);
    const healthWith = async () => {
      const health = createClient(Health, server.address, { retry: false, defaultTimeoutMs: 3_000, credentials });
      try {
        return (await health.check({})).status;
      } finally {
        health.close();
      }
    };
    try {
      assert.equal(await healthWith(), HealthCheckResponse_ServingStatus.SERVING);
      // Renewed with a certificate this server does not trust: new connections presenting it are refused, which shows it is used.
      replaceCertificate('foreign-client', 'live-client');
      await eventually('the renewed client certificate is presented', async () => healthWith().then(() => false, () => true));
    } finally {
      await server.shutdown();
    }
  });
});
