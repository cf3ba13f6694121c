/**
 * Takes erased rows out of the gallery database's files, not only out of its tables.
 *
 * PostgreSQL (and PGlite, which is PostgreSQL) deletes rows logically: a deleted row's bytes stay
 * in its table and index files until the table is rewritten, and in the write-ahead log until the
 * segment is removed. Measured on PGlite: after DELETE and a plain VACUUM the subject id was still
 * in the table, its index and the WAL; after VACUUM FULL it was only in the WAL; after a WAL
 * switch and a checkpoint with wal_recycle off (a recycled segment keeps its old bytes until it is
 * overwritten), in no file. That is what a scrub does, after every erasure.
 *
 * The keys that open the sealed templates are destroyed in the key store regardless
 * (compliance/key-store.ts): what a scrub removes is what is left readable, the subject id,
 * metadata, consent records and ciphertext without a key.
 */
import type { Logger } from '@faceprint/telemetry';
import type { Database } from './database.js';

/** Tables that hold a subject's rows (and so, after an erasure, its deleted rows). */
const SUBJECT_TABLES = ['subjects', 'subject_pseudonyms', 'consents', 'enroll_requests', 'templates'];

/**
 * `full`: after each erasure, rewrite the subject tables (VACUUM FULL) and, where the server
 * allows it, retire the WAL that held the rows. `keys`: only the keys are destroyed; the deleted
 * rows wait for autovacuum and WAL recycling.
 */
export type ScrubMode = 'full' | 'keys';

/** What a scrub can reach on this database. */
export interface ScrubReach {
  /** The subject tables are rewritten. */
  readonly tables: boolean;
  /** The WAL segments that held the rows are removed at the next checkpoint. */
  readonly wal: boolean;
  /** Why the WAL is out of reach, when it is. */
  readonly walLimit?: string;
  /**
   * The planner's statistics can be rewritten too (VACUUM FULL pg_statistic: superuser only).
   * ANALYZE samples column values, subject ids among them, into pg_statistic; a fresh ANALYZE
   * replaces them, but the old rows stay in that catalog's file until it is rewritten.
   */
  readonly statistics: boolean;
}

/** Scrubs erased rows; concurrent requests share runs, and each waits for a run that started after it asked. */
export class ErasedRowsScrubber {
  readonly #db: Database;
  readonly #mode: ScrubMode;
  readonly #log: Logger;
  #reach: ScrubReach | undefined;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  constructor(db: Database, mode: ScrubMode, log: Logger) {
    this.#db = db;
    this.#mode = mode;
    this.#log = log;
  }

  /** What scrubs reach here; logged once, with what is left when it is not everything. */
  async reach(): Promise<ScrubReach> {
    if (this.#reach) return this.#reach;
    if (this.#mode === 'keys') {
      this.#reach = { tables: false, wal: false, walLimit: 'FACEPRINT_MATCHER_ERASURE_SCRUB=keys', statistics: false };
    } else if (this.#db.kind === 'embedded') {
      // The embedded database runs in this process: its checkpoints follow this session's setting.
      await this.#db.pool.query('SET wal_recycle = off');
      this.#reach = { tables: true, wal: true, statistics: true };
    } else {
      this.#reach = { tables: true, ...(await walReach(this.#db)) };
      if (!this.#reach.statistics) {
        this.#log.warn({}, 'after an erasure, column statistics sampled before it (pg_statistic) may keep an erased subject id in that catalog\'s file until autovacuum reclaims it: this role is not a superuser (docs/compliance.md)');
      }
    }
    if (!this.#reach.wal) {
      this.#log.warn(
        { scrub: this.#mode, walLimit: this.#reach.walLimit },
        'after an erasure, the deleted rows stay readable in the gallery database\'s WAL until it is recycled and overwritten; the sealed templates cannot be opened (their keys are destroyed), but subject ids and metadata can be read from those files (docs/compliance.md)',
      );
    }
    return this.#reach;
  }

  /** Scrubs the rows erased before this call. Failures are logged, not thrown: the erasure itself has committed. */
  scrub(): Promise<void> {
    if (this.#queued) return this.#queued;
    if (!this.#running) {
      this.#running = this.#run().finally(() => (this.#running = undefined));
      return this.#running;
    }
    this.#queued = this.#running.then(() => {
      this.#queued = undefined;
      return this.scrub();
    });
    return this.#queued;
  }

  async #run(): Promise<void> {
    const reach = await this.reach();
    if (!reach.tables) return;
    const started = performance.now();
    try {
      await this.#db.pool.query(`VACUUM FULL ${SUBJECT_TABLES.join(', ')}`);
      await this.#db.pool.query('VACUUM template_changes');
      // Fresh statistics hold no erased value; the catalog's old rows go with its rewrite.
      await this.#db.pool.query(`ANALYZE ${SUBJECT_TABLES.join(', ')}`);
      if (reach.statistics) await this.#db.pool.query('VACUUM FULL pg_statistic');
      if (reach.wal) {
        await this.#db.pool.query('SELECT pg_switch_wal()');
        await this.#db.pool.query('CHECKPOINT');
      }
      this.#log.debug({ ms: Math.round(performance.now() - started), wal: reach.wal }, 'erased rows scrubbed from the gallery database\'s files');
    } catch (error) {
      this.#log.error({ err: error }, 'could not scrub erased rows from the gallery database\'s files; the next erasure or restart tries again');
    }
  }
}

/** Whether this PostgreSQL server lets the matcher retire WAL segments, and removes them when retired. */
async function walReach(db: Database): Promise<{ wal: boolean; walLimit?: string; statistics: boolean }> {
  const { rows } = await db.pool.query<{ recycle: string; archive: string; may_switch: boolean; may_checkpoint: boolean; superuser: boolean }>(
    `SELECT current_setting('wal_recycle') AS recycle, current_setting('archive_mode') AS archive,
            has_function_privilege('pg_switch_wal()', 'EXECUTE') AS may_switch,
            pg_has_role(current_user, 'pg_checkpoint', 'MEMBER') AS may_checkpoint,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`,
  );
  const server = { ...rows[0]!, may_checkpoint: rows[0]!.may_checkpoint || rows[0]!.superuser };
  const limits = [
    ...(server.recycle === 'on' ? ['the server recycles WAL segments (wal_recycle = on), which keeps their old bytes until overwritten'] : []),
    ...(!server.may_switch ? ['this role may not call pg_switch_wal()'] : []),
    ...(!server.may_checkpoint ? ['this role may not CHECKPOINT (grant pg_checkpoint)'] : []),
  ];
  if (server.archive !== 'off') limits.push('WAL is archived (archive_mode): archived segments keep the rows for the archive\'s retention');
  const wal = server.recycle === 'off' && server.may_switch && server.may_checkpoint;
  return limits.length === 0 ? { wal, statistics: server.superuser } : { wal, walLimit: limits.join('; '), statistics: server.superuser };
}
