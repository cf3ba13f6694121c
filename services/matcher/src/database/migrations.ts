/**
 * Versioned schema migrations, applied at start-up: `migrations/NNNN_name.sql`, in order, each in
 * its own transaction and recorded in `schema_migrations`. Idempotent, and safe when several
 * matcher replicas start at once (they queue on an advisory lock). Written here rather than taken
 * from a migration library because the whole job is these forty lines over `pg`, and the
 * embedded database must run exactly the same SQL.
 */
import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);
const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** One migration file. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The migrations shipped with this matcher, in version order. */
export async function readMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((file) => FILE_NAME.test(file)).sort();
  return Promise.all(
    files.map(async (file) => {
      const [, version, name] = FILE_NAME.exec(file)!;
      return { version: Number(version), name: name!, sql: await readFile(new URL(file, MIGRATIONS_DIR), 'utf8') };
    }),
  );
}

/** Applies every migration `schema` lacks; returns the versions applied by this call. */
export async function migrate(pool: pg.Pool, schema: string): Promise<number[]> {
  const migrations = await readMigrations();
  const client = await pool.connect();
  const onError = () => undefined; // a dropped connection fails the next query instead
  client.on('error', onError);
  try {
    await client.query(`SELECT pg_advisory_lock(hashtext($1))`, [`${schema}.migrations`]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`SET search_path TO ${schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, apply_time timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const done = new Set(rows.map((row) => row.version));
      const applied: number[] = [];
      for (const migration of migrations.filter((m) => !done.has(m.version))) {
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw new Error(`migration ${migration.version} (${migration.name}) failed: ${(error as Error).message}`, { cause: error });
        }
        applied.push(migration.version);
      }
      return applied;
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext($1))`, [`${schema}.migrations`]);
    }
  } finally {
    client.off('error', onError);
    client.release();
  }
}
