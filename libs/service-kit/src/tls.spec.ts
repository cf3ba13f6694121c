/**
 * TLS and mutual TLS with certificates made for the test by openssl: a CA, a server certificate
 * for 127.0.0.1, and a client certificate. A client that trusts the CA and presents its
 * certificate is served; one without a certificate, or in plaintext, is not.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DetectorService } from '@faceprint/contracts/detector';
import { Health, HealthCheckResponse_ServingStatus } from '@faceprint/contracts/health';
import { status } from '@grpc/grpc-js';
import { createClient } from './client.js';
import { type ConfigError, loadServerConfig } from './config.js';
import { implement } from './rpc-types.js';
import { startTestServer } from './test-support.js';
import { clientCredentialsFromEnv } from './tls.js';

const dir = mkdtempSync(join(tmpdir(), 'faceprint-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

/** A CA, and a certificate it signs for `name` (with the given subjectAltName). */
function makeCertificates(): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=faceprint test CA');
  for (const [name, san] of [['server', 'IP:127.0.0.1,DNS:localhost'], ['client', 'DNS:gateway.faceprint.test']] as const) {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(file(`${name}.ext`), `subjectAltName=${san}\n`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
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
  });
});
