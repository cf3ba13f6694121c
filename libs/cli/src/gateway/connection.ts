/**
 * What every gateway command shares: the global flags (`--target HOST:PORT`, `--api-key`,
 * `--json`), finding the API key (the local mesh's development keys when it is the target), and
 * the exit codes scripts rely on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_TARGET, FaceprintClient } from '@faceprint/client';
import { clientCredentialsFromEnv, FaceprintError } from '@faceprint/service-kit/clients';
import { status } from '@grpc/grpc-js';

/** The flags of every gateway command. */
export const GLOBAL_OPTIONS = {
  target: { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** Exit statuses scripts can rely on. */
export const EXIT = { ok: 0, failed: 1, badInput: 2, notFound: 3, denied: 4, unavailable: 5 } as const;

/** A usage error: the command line itself is wrong (exit 2). */
export class UsageError extends Error {}

/** The exit status for a failed call. */
export function exitStatusFor(error: unknown): number {
  // A usage error: ours, or node:util parseArgs's (an unknown or malformed flag).
  const code = (error as { code?: unknown } | undefined)?.code;
  if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) return EXIT.badInput;
  if (!(error instanceof FaceprintError)) return EXIT.failed;
  switch (error.code) {
    case status.INVALID_ARGUMENT:
    case status.OUT_OF_RANGE:
    case status.FAILED_PRECONDITION:
      return EXIT.badInput;
    case status.NOT_FOUND:
      return EXIT.notFound;
    case status.PERMISSION_DENIED:
    case status.UNAUTHENTICATED:
      return EXIT.denied;
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
    case status.RESOURCE_EXHAUSTED:
      return EXIT.unavailable;
    default:
      return EXIT.failed;
  }
}

/** Prints why a command failed, once, and returns its exit status. */
export function reportFailure(error: unknown): number {
  const code = exitStatusFor(error);
  if (error instanceof FaceprintError) {
    const fields = error.fieldViolations.map((v) => `\n  ${v.field}: ${v.description}`).join('');
    // A message that only sums up the field violations is not printed again above them.
    const summary = error.fieldViolations.map((v) => `${v.field}: ${v.description}`).join('; ');
    process.stderr.write(`faceprint: ${status[error.code]}:${error.message === summary ? '' : ` ${error.message}`}${fields}\n`);
  } else {
    process.stderr.write(`faceprint: ${error instanceof Error ? error.message : String(error)}\n`);
    if (code === EXIT.badInput) process.stderr.write('(faceprint --help lists the commands)\n');
  }
  return code;
}

/** The local mesh's development keys, made by the gateway's first start. */
function devKeys(): { operator: string; compliance: string; admin?: string } | undefined {
  const dir = process.env.FACEPRINT_GATEWAY_DATA_DIR || join(fileURLToPath(new URL('../../../../', import.meta.url)), 'data', 'gateway');
  try {
    return JSON.parse(readFileSync(join(dir, 'dev-keys.json'), 'utf8')) as { operator: string; compliance: string; admin?: string };
  } catch {
    return undefined;
  }
}

const isLocal = (target: string) => /^(127\.0\.0\.1|localhost|\[::1\]):50050$/.test(target);

/** A client of the target gateway, authenticated for `role`'s commands. */
export function connect(values: { target?: string | undefined; 'api-key'?: string | undefined }, role: 'operator' | 'compliance' | 'admin'): FaceprintClient {
  const target = values.target ?? process.env.FACEPRINT_TARGET ?? DEFAULT_TARGET;
  if (!/^[^\s:]+:\d{1,5}$/.test(target) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(target)) throw new UsageError(`--target must be HOST:PORT, got "${target}"`);
  const apiKey = values['api-key'] ?? process.env.FACEPRINT_API_KEY ?? (isLocal(target) ? devKeys()?.[role] : undefined);
  if (!apiKey) throw new UsageError(`no API key: pass --api-key or set FACEPRINT_API_KEY${isLocal(target) ? ' (or start the local mesh once: npm start)' : ''}`);
  // TLS to the gateway when FACEPRINT_TLS_CA_FILE names its CA (and a client certificate, if it asks for one).
  const credentials = clientCredentialsFromEnv(process.env);
  return new FaceprintClient({ target, apiKey, ...(credentials ? { credentials } : {}) });
}

/**
 * node:util's parseArgs, except that a flag's value may be a negative number (`--top -1`), which
 * parseArgs would take for a flag of its own and refuse as ambiguous: the value then reaches the
 * flag's own check, whose message says what is allowed.
 */
export function parseFlags<T extends ParseArgsConfig & { args: string[] }>(config: T): ReturnType<typeof parseArgs<T>> {
  const takesValue = (arg: string) => arg.startsWith('--') && config.options?.[arg.slice(2)]?.type === 'string';
  const args: string[] = [];
  for (let i = 0; i < config.args.length; i++) {
    const arg = config.args[i]!;
    const next = config.args[i + 1];
    if (takesValue(arg) && next !== undefined && /^-[\d.]/.test(next)) {
      args.push(`${arg}=${next}`);
      i++;
    } else {
      args.push(arg);
    }
  }
  return parseArgs({ ...config, args });
}

/** A float for a flag, or a usage error. */
export function numberFlag(value: string | undefined, flag: string, check: (n: number) => boolean, expected: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`${flag} must be ${expected}, got "${value}"`);
  return n;
}
