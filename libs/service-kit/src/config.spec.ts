import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadServerConfig } from './config.js';
import { DEFAULT_GRPC_PORTS } from './ports.js';

describe('loadServerConfig', () => {
  it('uses the documented per-service defaults', () => {
    const config = loadServerConfig('matcher', {});
    assert.equal(config.port, 50054);
    assert.equal(config.metricsPort, 9464);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.maxMessageBytes, 32 * 1024 * 1024);
    assert.deepEqual(Object.values(DEFAULT_GRPC_PORTS), [50050, 50051, 50052, 50053, 50054, 50055, 50056]);
  });

  it('takes a health-only port when one is named, none when the variable is unset or empty', () => {
    assert.equal(loadServerConfig('matcher', { FACEPRINT_HEALTH_PORT: '8086' }).healthPort, 8086);
    assert.equal(loadServerConfig('matcher', {}).healthPort, undefined);
    assert.equal(loadServerConfig('matcher', { FACEPRINT_HEALTH_PORT: '' }).healthPort, undefined, 'how a job keeps its services from inheriting the pod\'s');
    assert.throws(() => loadServerConfig('matcher', { FACEPRINT_HEALTH_PORT: 'probe' }), /FACEPRINT_HEALTH_PORT: must be an integer/);
  });

  it('returns a frozen object', () => {
    const config = loadServerConfig('detector', { FACEPRINT_GRPC_PORT: '0' });
    assert.equal(config.port, 0);
    assert.ok(Object.isFrozen(config));
  });

  it('names every invalid variable in one error', () => {
    assert.throws(
      () => loadServerConfig('gateway', { FACEPRINT_GRPC_PORT: 'fifty', FACEPRINT_LOG_LEVEL: 'loud', FACEPRINT_SHUTDOWN_GRACE_MS: '-1' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(Object.keys(error.problems).sort(), ['FACEPRINT_GRPC_PORT', 'FACEPRINT_LOG_LEVEL', 'FACEPRINT_SHUTDOWN_GRACE_MS']);
        assert.match(error.message, /FACEPRINT_GRPC_PORT: must be an integer between 0 and 65535, got "fifty"/);
        return true;
      },
    );
  });
});
