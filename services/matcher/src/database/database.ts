/**
 * The gallery database: a `pg` pool against PostgreSQL, or against the embedded default, PGlite
 * (Postgres compiled to WebAssembly) served to `pg` through pglite-socket, so that one SQL dialect
 * and one code path serve both.
 *
 * The embedded database runs in this process, stored under the data directory, and is reached
 * through a Unix socket in a private temporary directory (PGlite has no authentication). It is a
 * single-session database, reached through one connection (EMBEDDED_CONNECTIONS), and it cannot
 * deliver LISTEN/NOTIFY between connections, so the index follows the change log by polling there
 * (and only one matcher may use it).
 */
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from '@faceprint/telemetry';
import pg from 'pg';

/** Where the gallery lives and how to reach it. */
export interface DatabaseOptions {
  /** A postgres:// URL, or empty for the embedded database under `dataDir`. */
  readonly databaseUrl: string;
  /** The embedded database's directory. */
  readonly dataDir: string;
  /** The schema holding the gallery tables; every connection's search_path. */
  readonly schema: string;
  /** Connections in the pool. */
  readonly poolSize: number;
}

/** An open gallery database. */
export interface Database {
  /** `postgres` for a PostgreSQL server, `embedded` for PGlite. */
  readonly kind: 'postgres' | 'embedded';
  /** The schema holding the gallery tables (already each connection's search_path). */
  readonly schema: string;
  /** The connection pool. */
  readonly pool: pg.Pool;
  /** Opens a dedicated connection for LISTEN, or undefined where notifications cannot reach it (embedded). */
  connectListener(): Promise<pg.Client> | undefined;
  /** Closes the pool (and the embedded database). */
  close(): Promise<void>;
}

/** Opens the gallery database named by `options`. */
export async function openDatabase(options: DatabaseOptions, log: Logger): Promise<Database> {
  if (options.databaseUrl) {
    // The application name carries the schema, so operators (and tests) can tell galleries apart.
    const connection: pg.ClientConfig = { connectionString: options.databaseUrl, options: `-c search_path=${options.schema}`, application_name: `faceprint-matcher:${options.schema}` };
    const pool = createPool({ ...connection, max: options.poolSize }, log);
    return {
      kind: 'postgres',
      schema: options.schema,
      pool,
      connectListener: async () => {
        const client = new pg.Client(connection);
        await client.connect();
        return client;
      },
      close: () => pool.end(),
    };
  }
  return openEmbeddedDatabase(options, log);
}

/** A pool whose idle connections may die (a Postgres restart) without crashing the process. */
function createPool(config: pg.PoolConfig, log: Logger): pg.Pool {
  const pool = new pg.Pool({ ...config, connectionTimeoutMillis: 10_000 });
  pool.on('error', (error) => log.warn({ err: error }, 'an idle database connection failed; the pool replaces it'));
  return pool;
}

/**
 * One connection to the embedded database, whatever the pool size says. pglite-socket (0.2)
 * queues the protocol messages of all its connections onto PGlite's one session one message at a
 * time, so two connections' extended-protocol exchanges (Parse, Bind, Execute, Sync) interleave:
 * one's Parse replaces the other's unnamed statement ("unnamed prepared statement does not exist"
 * under parallel enrolments), and four connections mixing transactions stalled outright. PGlite runs
 * one statement at a time anyway, so a single connection costs no parallelism; callers queue in pg's
 * pool instead.
 */
const EMBEDDED_CONNECTIONS = 1;

async function openEmbeddedDatabase(options: DatabaseOptions, log: Logger): Promise<Database> {
  await mkdir(options.dataDir, { recursive: true });
  const releaseLock = await lockDataDir(options.dataDir);
  const socketDir = await mkdtemp(join(tmpdir(), 'faceprint-gallery-'));
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = await PGlite.create({ dataDir: join(options.dataDir, 'pgdata') });
    server = new PGLiteSocketServer({ db, path: join(socketDir, '.s.PGSQL.5432'), maxConnections: EMBEDDED_CONNECTIONS });
    await server.start();
  } catch (error) {
    await server?.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
    await rm(socketDir, { recursive: true, force: true });
    await releaseLock();
    throw error;
  }
  // Every connection shares PGlite's one session (startup options are ignored), so the
  // search_path is set once, on the session itself.
  await db.exec(`SET search_path TO ${options.schema}`);
  const pool = createPool({ host: socketDir, port: 5432, user: 'postgres', database: 'postgres', max: EMBEDDED_CONNECTIONS }, log);
  log.info({ dataDir: options.dataDir }, 'embedded gallery database (PGlite) started');
  return {
    kind: 'embedded',
    schema: options.schema,
    pool,
    connectListener: () => undefined,
    close: async () => {
      await pool.end();
      await server.stop();
      await db.close();
      await rm(socketDir, { recursive: true, force: true });
      await releaseLock();
    },
  };
}

/**
 * Takes the data directory for this process: PGlite would corrupt a database that two processes
 * open. A lock left by a process that no longer runs is taken over.
 */
async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, 'matcher.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(await readFile(path, 'utf8').catch(() => ''));
      if (Number.isInteger(holder) && holder > 0 && isRunning(holder)) {
        throw new Error(`the embedded gallery in ${dataDir} is in use by process ${holder}; stop it, or set FACEPRINT_MATCHER_DATA_DIR to another directory`, { cause: error });
      }
      await rm(path, { force: true });
    }
  }
  throw new Error(`could not lock the embedded gallery in ${dataDir}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `work` in a transaction on one connection, committing on success and rolling back on failure. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, isolation = 'READ COMMITTED'): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  // A connection that dies while checked out emits 'error' on the client; unheard, that would end
  // the process. The failure reaches `work` as its next query's rejection.
  const onError = () => (broken = true);
  client.on('error', onError);
  try {
    await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // A connection that cannot even roll back is dropped, not returned to the pool.
    await client.query('ROLLBACK').catch(() => (broken = true));
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
