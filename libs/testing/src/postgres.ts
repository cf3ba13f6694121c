/**
 * PostgreSQL for tests: the server CI machines run (127.0.0.1:5432, trust auth, database `test`),
 * or FACEPRINT_TEST_DATABASE_URL. Each test suite works in a scratch schema of its own, dropped
 * afterwards, so suites never see each other's rows. Without a reachable server the tests skip
 * and say why, except under CI, where they fail.
 */
import { randomBytes } from 'node:crypto';
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
