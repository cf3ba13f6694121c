/**
 * Moves what galleries before migration 0005 kept in the database into its new places: the
 * wrapped data keys (table data_keys) into the key store, the erasure receipts (table erasures,
 * which named subjects) into the erasure log. Then both tables are dropped, and the scrub that
 * follows at start-up retires the WAL that held them. Idempotent, and safe when several replicas
 * start at once (one advisory lock).
 */
import { fromBinary } from '@bufbuild/protobuf';
import { ErasureReceiptSchema } from '@faceprint/contracts/common';
import type { Logger } from '@faceprint/telemetry';
import { inTransaction, type Database } from '../database/database.js';
import type { ErasureLog } from './erasure-log.js';
import type { DataKeyStore } from './key-store.js';

/** Moves the old tables' rows; returns how many keys and receipts it moved. */
export async function moveKeysOutOfGallery(db: Database, keyStore: DataKeyStore, erasureLog: ErasureLog, log: Logger): Promise<{ keys: number; receipts: number }> {
  return inTransaction(db.pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${db.schema}.key-move`]);
    const { rows: tables } = await client.query<{ keys: boolean; erasures: boolean }>(
      `SELECT to_regclass('data_keys') IS NOT NULL AS keys, to_regclass('erasures') IS NOT NULL AS erasures`,
    );
    let keys = 0;
    let receipts = 0;
    if (tables[0]!.keys) {
      const { rows } = await client.query<{ key_id: string; tenant_id: string; wrapped_key: Buffer; master_key_id: string }>(
        'SELECT key_id, tenant_id, wrapped_key, master_key_id FROM data_keys',
      );
      for (const row of rows) {
        // A key already moved by a run that stopped before the drop is written again, unchanged.
        await keyStore.put(row.key_id, { tenantId: row.tenant_id, wrappedKey: row.wrapped_key, masterKeyId: row.master_key_id });
      }
      keys = rows.length;
      await client.query('DROP TABLE data_keys');
    }
    if (tables[0]!.erasures) {
      const { rows } = await client.query<{ receipt: Buffer; reason: number; erased_at: Date }>('SELECT receipt, reason, erased_at FROM erasures ORDER BY erasure_pk');
      for (const row of rows) await erasureLog.append(client, fromBinary(ErasureReceiptSchema, row.receipt), row.reason, row.erased_at);
      receipts = rows.length;
      await client.query('DROP TABLE erasures');
    }
    if (keys + receipts > 0) log.info({ keys, receipts, keyStore: keyStore.location }, 'moved data keys to the key store and erasure receipts to the erasure log, out of the gallery tables');
    return { keys, receipts };
  });
}
