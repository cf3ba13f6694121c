/**
 * Configuration: environment variables compiled once, at start-up, into a frozen, typed object.
 * A missing or malformed value stops start-up with a ConfigError naming every bad variable.
 * Parsing is envalid's; this file holds the variables every service shares and their defaults.
 */
import { GATEWAY_DEFAULT_MAX_MESSAGE_BYTES, GRPC_DEFAULT_MAX_MESSAGE_BYTES, type ServiceName } from '@faceprint/contracts';
import { cleanEnv, makeValidator, str, type ReporterOptions } from 'envalid';
import { DEFAULT_FLOW_CONTROL_WINDOW_BYTES, GATEWAY_STREAM_WINDOW_BYTES } from './flow-control.js';
import { DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS } from './ports.js';
import { loadServerTls, type ServerTls } from './tls.js';

/** Thrown when the environment holds an invalid configuration. The message names each variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The invalid variables and why, e.g. `{ FACEPRINT_GRPC_PORT: 'must be an integer ...' }`. */
  readonly problems: Readonly<Record<string, string>>;

  constructor(problems: Record<string, string>) {
    const lines = Object.entries(problems).map(([name, why]) => `  ${name}: ${why}`);
    super(`invalid configuration:\n${lines.join('\n')}`);
    this.problems = problems;
  }
}

/** Default budget of request bytes a server reads into memory at once (256 MiB: 8 reads of the largest message). */
export const DEFAULT_REQUEST_BYTES_IN_FLIGHT = 256 * 1024 * 1024;

/** An integer validator with bounds (envalid's `port` refuses 0, which tests need). */
export const int = (min: number, max: number) =>
  makeValidator<number>((input) => {
    const value = Number(input);
    if (!/^-?\d+$/.test(input.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new Error(`must be an integer between ${min} and ${max}, got "${input}"`);
    }
    return value;
  });

/** A decimal-number validator with bounds. */
export const decimal = (min: number, max: number) =>
  makeValidator<number>((input) => {
    const value = Number(input);
    if (input.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
      throw new Error(`must be a number between ${min} and ${max}, got "${input}"`);
    }
    return value;
  });

/** `name` or `name@version` of a registry model (a service serving it follows `current` unless a version is pinned). */
export const registryModel = makeValidator<{ name: string; version: number | undefined }>((input) => {
  const match = /^([a-z0-9][a-z0-9._-]{0,63})(?:@([1-9]\d{0,8}))?$/.exec(input);
  if (!match) throw new Error(`must be a registry model name, or name@version, got "${input}"`);
  return { name: match[1]!, version: match[2] ? Number(match[2]) : undefined };
});

/** A `host:port` address validator for downstream services. */
export const address = makeValidator<string>((input) => {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(input);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    throw new Error(`must be host:port, got "${input}"`);
  }
  return input;
});

/**
 * Compiles `env` against envalid specs into a frozen object, throwing one ConfigError that names
 * every invalid variable (envalid's default reporter would print and exit instead).
 */
export function compileEnv<S extends object>(env: NodeJS.ProcessEnv, specs: S): Readonly<ReturnType<typeof cleanEnv<S>>> {
  const reporter = ({ errors }: ReporterOptions<S>) => {
    const problems = Object.fromEntries(
      Object.entries(errors).map(([name, error]) => [name, (error as Error).message || 'required but not set']),
    );
    if (Object.keys(problems).length > 0) throw new ConfigError(problems);
  };
  return cleanEnv(env, specs, { reporter });
}

/** The settings every faceprint gRPC server shares. */
export interface ServerConfig {
  /** Which service this process is. */
  readonly service: ServiceName;
  /** Listen host. `FACEPRINT_GRPC_HOST`, default `127.0.0.1` (set `0.0.0.0` in containers). */
  readonly host: string;
  /** Listen port; 0 picks a free one. `FACEPRINT_GRPC_PORT`, default per service (50050-50056). */
  readonly port: number;
  /** Prometheus `/metrics` port; 0 turns the endpoint off. `FACEPRINT_METRICS_PORT`, default 9460-9465. */
  readonly metricsPort: number;
  /** The `/metrics` endpoint's host. `FACEPRINT_METRICS_HOST`, default `127.0.0.1` (set `0.0.0.0` in containers). */
  readonly metricsHost: string;
  /** Largest message received or sent. `FACEPRINT_GRPC_MAX_MESSAGE_BYTES`, default 32 MiB (the gateway: 64 MiB). */
  readonly maxMessageBytes: number;
  /**
   * Request bytes the server reads into memory at once, over all calls (request-byte-budget.ts);
   * a read waits while the budget is spent. `FACEPRINT_GRPC_REQUEST_BYTES_IN_FLIGHT`, default
   * 256 MiB, at least the largest message.
   */
  readonly requestBytesInFlight: number;
  /** HTTP/2 receive window per connection (flow-control.ts). `FACEPRINT_GRPC_FLOW_CONTROL_WINDOW_BYTES`, default 8 MiB. */
  readonly flowControlWindowBytes: number;
  /** HTTP/2 receive window per stream (flow-control.ts), at most the connection's. `FACEPRINT_GRPC_STREAM_WINDOW_BYTES`, default 1 MiB on the gateway, the connection's on the others. */
  readonly streamWindowBytes: number;
  /** How long health reports NOT_SERVING before the server stops accepting calls, so load balancers move away. `FACEPRINT_DRAIN_DELAY_MS`, default 0. */
  readonly drainDelayMs: number;
  /** How long in-flight calls may run after the server stops accepting, before they are cancelled. `FACEPRINT_SHUTDOWN_GRACE_MS`, default 10000. */
  readonly shutdownGraceMs: number;
  /** Interval of server keepalive pings. `FACEPRINT_KEEPALIVE_TIME_MS`, default 30000. */
  readonly keepaliveTimeMs: number;
  /** How long a keepalive ping may go unanswered. `FACEPRINT_KEEPALIVE_TIMEOUT_MS`, default 10000. */
  readonly keepaliveTimeoutMs: number;
  /** pino log level. `FACEPRINT_LOG_LEVEL`, default `info`. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** TLS (and mutual TLS) of the server: see tls.ts. Undefined: plaintext. */
  readonly tls: ServerTls | undefined;
  /**
   * A second, plaintext port that serves `grpc.health.v1` alone, for probes that cannot speak
   * mutual TLS (Kubernetes' gRPC probes). `FACEPRINT_HEALTH_PORT`, default unset: none.
   */
  readonly healthPort: number | undefined;
}

/** Compiles the shared server settings of `service` from the environment. */
export function loadServerConfig(service: ServiceName, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  // An empty FACEPRINT_HEALTH_PORT is no health-only port (how a process keeps a child from inheriting one).
  const compiled = compileEnv({ ...env, FACEPRINT_HEALTH_PORT: env.FACEPRINT_HEALTH_PORT || undefined }, {
    FACEPRINT_GRPC_HOST: str({ default: '127.0.0.1' }),
    FACEPRINT_GRPC_PORT: int(0, 65535)({ default: DEFAULT_GRPC_PORTS[service] }),
    FACEPRINT_METRICS_PORT: int(0, 65535)({ default: DEFAULT_METRICS_PORTS[service] }),
    FACEPRINT_METRICS_HOST: str({ default: '127.0.0.1' }),
    FACEPRINT_HEALTH_PORT: int(0, 65535)({ default: undefined }),
    FACEPRINT_GRPC_MAX_MESSAGE_BYTES: int(4 * 1024 * 1024, 256 * 1024 * 1024)({ default: service === 'gateway' ? GATEWAY_DEFAULT_MAX_MESSAGE_BYTES : GRPC_DEFAULT_MAX_MESSAGE_BYTES }),
    FACEPRINT_GRPC_REQUEST_BYTES_IN_FLIGHT: int(4 * 1024 * 1024, 2 ** 40)({ default: DEFAULT_REQUEST_BYTES_IN_FLIGHT }),
    FACEPRINT_GRPC_FLOW_CONTROL_WINDOW_BYTES: int(65_535, 2 ** 31 - 1)({ default: DEFAULT_FLOW_CONTROL_WINDOW_BYTES }),
    FACEPRINT_GRPC_STREAM_WINDOW_BYTES: int(65_535, 2 ** 31 - 1)({ default: service === 'gateway' ? GATEWAY_STREAM_WINDOW_BYTES : 2 ** 31 - 1 }),
    FACEPRINT_DRAIN_DELAY_MS: int(0, 120_000)({ default: 0 }),
    FACEPRINT_SHUTDOWN_GRACE_MS: int(0, 600_000)({ default: 10_000 }),
    FACEPRINT_KEEPALIVE_TIME_MS: int(1_000, 3_600_000)({ default: 30_000 }),
    FACEPRINT_KEEPALIVE_TIMEOUT_MS: int(1_000, 600_000)({ default: 10_000 }),
    FACEPRINT_LOG_LEVEL: str({
      default: 'info',
      choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    }),
  });
  if (compiled.FACEPRINT_GRPC_REQUEST_BYTES_IN_FLIGHT < compiled.FACEPRINT_GRPC_MAX_MESSAGE_BYTES) {
    throw new ConfigError({
      FACEPRINT_GRPC_REQUEST_BYTES_IN_FLIGHT: `must be at least FACEPRINT_GRPC_MAX_MESSAGE_BYTES (${compiled.FACEPRINT_GRPC_MAX_MESSAGE_BYTES}), got ${compiled.FACEPRINT_GRPC_REQUEST_BYTES_IN_FLIGHT}`,
    });
  }
  return Object.freeze({
    service,
    host: compiled.FACEPRINT_GRPC_HOST,
    port: compiled.FACEPRINT_GRPC_PORT,
    metricsPort: compiled.FACEPRINT_METRICS_PORT,
    metricsHost: compiled.FACEPRINT_METRICS_HOST,
    maxMessageBytes: compiled.FACEPRINT_GRPC_MAX_MESSAGE_BYTES,
    requestBytesInFlight: compiled.FACEPRINT_GRPC_REQUEST_BYTES_IN_FLIGHT,
    flowControlWindowBytes: compiled.FACEPRINT_GRPC_FLOW_CONTROL_WINDOW_BYTES,
    streamWindowBytes: Math.min(compiled.FACEPRINT_GRPC_STREAM_WINDOW_BYTES, compiled.FACEPRINT_GRPC_FLOW_CONTROL_WINDOW_BYTES),
    drainDelayMs: compiled.FACEPRINT_DRAIN_DELAY_MS,
    shutdownGraceMs: compiled.FACEPRINT_SHUTDOWN_GRACE_MS,
    keepaliveTimeMs: compiled.FACEPRINT_KEEPALIVE_TIME_MS,
    keepaliveTimeoutMs: compiled.FACEPRINT_KEEPALIVE_TIMEOUT_MS,
    logLevel: compiled.FACEPRINT_LOG_LEVEL,
    tls: loadServerTls(env),
    healthPort: compiled.FACEPRINT_HEALTH_PORT,
  });
}
