/**
 * Runs a faceprint service as its own process, exactly as `npm start -w @faceprint/<name>` does
 * (tsx plus the telemetry `--import`), and follows its JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ServiceName } from '@faceprint/contracts';

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** One JSON log line of a service. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/** How a process ended. */
export interface ProcessExit {
  /** The exit code, or null when a signal ended it. */
  readonly code: number | null;
  /** The signal that ended it, if any. */
  readonly signal: NodeJS.Signals | null;
}

/** A service process started by {@link startServiceProcess}. */
export interface ServiceProcess {
  /** The service. */
  readonly name: ServiceName;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** The bound gRPC port. */
  readonly port: number;
  /** The operating-system process id. */
  readonly pid: number;
  /** The JSON log lines so far. */
  readonly logs: LogLine[];
  /** Everything the process wrote, raw (for checks that nothing sensitive was written). */
  output(): string;
  /** Resolves when the process exits. */
  readonly exited: Promise<ProcessExit>;
  /** Sends a signal. */
  kill(signal: NodeJS.Signals): void;
  /** Sends SIGTERM and waits for the exit (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<ProcessExit>;
  /** Resolves with the first log line that matches. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/**
 * The local mesh's services call each other over mutual TLS at 127.0.0.1, and grpc-js sets the TLS
 * server name (SNI) to the target host even when it is an IP address, which Node reports once per
 * process as deprecated (DEP0123). Nothing depends on that SNI (each server has one certificate,
 * checked against its IP address), so the warning is turned off for the mesh's processes.
 */
export const QUIET_TLS_TO_IP = ['--disable-warning=DEP0123'];

/** The command line `npm start` runs for a service. */
export function serviceCommand(name: ServiceName): { command: string; args: string[]; cwd: string } {
  return {
    command: process.execPath,
    args: [...QUIET_TLS_TO_IP, '--import', 'tsx', '--import', '@faceprint/telemetry/register', 'src/main.ts'],
    cwd: `${REPO_ROOT}services/${name}`,
  };
}

/** Runs a service process to its exit (for start-up failures); resolves with the exit and output. */
export async function runServiceToExit(name: ServiceName, env: Record<string, string>): Promise<ProcessExit & { output: string }> {
  const { command, args, cwd } = serviceCommand(name);
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, output };
}

/** Options of {@link startServiceProcess}. */
export interface ServiceProcessOptions {
  /** Variables set over the parent's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for the `listening` log line. Default: 30 s. */
  readonly timeoutMs?: number;
  /** Called with every line the process writes to standard output or error. */
  readonly onOutput?: (line: string) => void;
  /** Run in its own process group, so a terminal's Ctrl-C reaches only the parent. Default: false. */
  readonly detached?: boolean;
}

/**
 * Starts `name` and resolves once it logs that it is listening. Rejects with its output when it
 * exits first or stays silent for `timeoutMs`.
 */
export async function startServiceProcess(name: ServiceName, options: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const { command, args, cwd } = serviceCommand(name);
  // The `listening` line is an info line: a parent logging at warn must not silence it in its children.
  const inheritedLevel = process.env.FACEPRINT_LOG_LEVEL ?? 'info';
  const child: ChildProcess = spawn(command, args, {
    cwd,
    env: { ...process.env, FACEPRINT_LOG_LEVEL: ['info', 'debug', 'trace'].includes(inheritedLevel) ? inheritedLevel : 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const logs: LogLine[] = [];
  const waiters = new Set<{ predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  let raw = '';
  child.stderr!.on('data', (chunk: Buffer) => (raw += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => (raw += chunk.toString()));
  if (options.onOutput) createInterface({ input: child.stderr! }).on('line', options.onOutput);
  createInterface({ input: child.stdout! }).on('line', (text) => {
    options.onOutput?.(text);
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return; // not a log line (e.g. an exporter printing to stdout)
    }
    logs.push(line);
    for (const waiter of waiters) {
      if (waiter.predicate(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  const exited = once(child, 'exit').then((args): ProcessExit => {
    const [code, signal] = args as [number | null, NodeJS.Signals | null];
    return { code, signal };
  });

  const waitForLog = (predicate: (line: LogLine) => boolean, waitMs = timeoutMs) => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = { predicate, resolve };
      waiters.add(waiter);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`${name}: no matching log line within ${waitMs} ms; output:\n${raw}`));
      }, waitMs);
      void exited.then((exit) => {
        clearTimeout(timer);
        if (waiters.delete(waiter)) reject(new Error(`${name} exited (${JSON.stringify(exit)}) before the log line; output:\n${raw}`));
      });
      const settle = waiter.resolve;
      waiter.resolve = (line) => {
        clearTimeout(timer);
        settle(line);
      };
    });
  };

  const listening = await waitForLog((line) => line.msg === 'listening').catch((error: unknown) => {
    child.kill('SIGKILL'); // never leave a half-started process behind
    throw error;
  });
  const port = Number(listening.port);
  return {
    name,
    port,
    pid: child.pid!,
    address: `127.0.0.1:${port}`,
    logs,
    output: () => raw,
    exited,
    waitForLog,
    kill: (signal) => child.kill(signal),
    async stop(stopTimeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}
