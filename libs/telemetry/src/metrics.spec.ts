import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { shutdownMetrics, startMetrics } from './metrics.js';

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The local addresses of the sockets listening on `port`, as the kernel lists them (IPv4, hex). */
async function listeners(port: number): Promise<string[]> {
  const table = await readFile('/proc/net/tcp', 'utf8');
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return table
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A') // 0A: LISTEN
    .map((fields) => fields[1]!.split(':')[0]!);
}

describe('the metrics endpoint', { skip: process.platform === 'linux' ? false : 'reads /proc/net/tcp' }, () => {
  after(() => shutdownMetrics());

  it('listens on loopback only unless a host is given', async () => {
    const port = await freePort();
    await startMetrics({ serviceName: 'faceprint-test', port });
    assert.deepEqual(await listeners(port), ['0100007F'], '127.0.0.1, not 0.0.0.0');
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(response.status, 200);
  });
});
