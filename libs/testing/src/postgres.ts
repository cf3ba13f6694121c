/**
 * PostgreSQL for tests: the server CI machines run (127.0.0.1:5432, trust auth, database `test`),
 * or FACEPRINT_TEST_DATABASE_URL. Each test suite works in a scratch schema of its own, dropped
 * afterwards, so suites never see each other's rows. Without a reachable server the tests skip
 * and say why, except under CI, where they fail. Tests that crash a server or read its files
 * run a private one (startPrivatePostgres).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** The test database: FACEPRINT_TEST_DATABASE_URL, else the CI server's `test` database. */
export const TEST_DATABASE_URL = process.env.FACEPRINT_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** For node:test's `skip` option: false when the test database answers, else the reason. Throws under CI. */
export async function skipUnlessPostgres(): Promise<false | string> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return false;
  } catch (error) {
    if (process.env.CI) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is not reachable, and CI must have it`, { cause: error });
    return `needs PostgreSQL at ${TEST_DATABASE_URL} (set FACEPRINT_TEST_DATABASE_URL): ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh schema name for one suite: `test_<random>`. */
export function scratchSchemaName(): string {
  return `test_${randomBytes(6).toString('hex')}`;
}

/** Runs SQL against the test database on a connection of its own. */
export async function queryTestDatabase<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Drops a scratch schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^test_[0-9a-f]+$/.test(schema)) throw new Error(`refusing to drop ${schema}: not a scratch schema`);
  await queryTestDatabase(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

const PG_BIN = '/usr/lib/postgresql/15/bin';

/**
 * For node:test's `skip` option: false where a private PostgreSQL server can run (root, a
 * `postgres` user and PostgreSQL 15's binaries, as on CI machines), else the reason. Throws under CI.
 */
export function skipUnlessPrivatePostgres(): false | string {
  if (process.getuid?.() === 0 && existsSync(join(PG_BIN, 'pg_ctl')) && hasUser('postgres')) return false;
  const reason = `needs root, a "postgres" user and ${PG_BIN} to run a private PostgreSQL server`;
  if (process.env.CI) throw new Error(`CI must be able to run a private PostgreSQL server: it ${reason}`);
  return reason;
}

/** A PostgreSQL server of a test's own, in a temporary directory: crash it or read its files without disturbing anything else. */
export interface PrivatePostgres {
  /** Its `postgres` database, as a connection URL. */
  readonly url: string;
  /** Its data directory (the cluster's files: tables, WAL). */
  readonly dataDir: string;
  /** Starts it again after a stop (crash recovery after an immediate one). */
  start(): void;
  /** Stops it: `fast` (clean, with a checkpoint) or `immediate` (a crash). */
  stop(mode?: 'fast' | 'immediate'): void;
  /** Stops it if running and removes its files. */
  remove(): Promise<void>;
}

/** Creates and starts a private PostgreSQL server on a free-looking port, with `settings` (`-c name=value`). */
export function startPrivatePostgres(settings: Record<string, string> = {}): PrivatePostgres {
  const dir = mkdtempSync(join(tmpdir(), 'faceprint-pg-'));
  const dataDir = join(dir, 'data');
  const port = 25_432 + Math.floor(Math.random() * 1000);
  const asPostgres = (command: string, ...args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, command), ...args], { stdio: 'pipe' });
  execFileSync('chown', ['postgres', dir]);
  asPostgres('initdb', '-D', dataDir, '-A', 'trust', '-U', 'postgres');
  const options = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`)].join(' ');
  const start = () => asPostgres('pg_ctl', '-D', dataDir, '-o', options, '-l', join(dir, 'log'), '-w', 'start');
  const stop = (mode: 'fast' | 'immediate' = 'fast') => asPostgres('pg_ctl', '-D', dataDir, '-m', mode, '-w', 'stop');
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    start,
    stop,
    remove: async () => {
      try {
        stop('immediate');
      } catch {
        // already stopped
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function hasUser(name: string): boolean {
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
