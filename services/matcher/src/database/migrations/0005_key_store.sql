-- Keys out of the gallery, and an erasure log that names no one.
--
-- The subjects' data keys move to the key store (compliance/key-store.ts), apart from this
-- database, whose deletions are only logical until vacuum and WAL recycling and which every
-- backup copies: a key deleted here could still be read back from those files. The matcher moves
-- the rows of data_keys into the key store at start-up and then drops the table
-- (compliance/key-move.ts); erasures (which named subjects) moves to erasure_log the same way.

-- Keys whose destruction an erasure has committed: destroyed in the key store right after the
-- commit, and again at start-up if the matcher stopped in between. Key ids only (random UUIDs).
CREATE TABLE key_destructions (
  key_id uuid PRIMARY KEY,
  request_time timestamptz NOT NULL DEFAULT now()
);

-- One row per erasure, append-only. The subject is named by a keyed digest (HMAC under a key
-- derived from the master key) and the signed receipt is sealed by the master key: a repeated
-- request (which names the subject) finds its receipt, while these files alone name no one.
CREATE TABLE erasure_log (
  erasure_pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  receipt_id uuid NOT NULL UNIQUE,
  tenant_id text NOT NULL,
  subject_digest text NOT NULL CHECK (subject_digest ~ '^[0-9a-f]{64}$'),
  reason smallint NOT NULL CHECK (reason > 0),
  erased_at timestamptz NOT NULL,
  -- The ErasureReceipt message (protobuf binary, exactly as first returned), sealed by the master key.
  sealed_receipt bytea NOT NULL,
  master_key_id text NOT NULL
);
CREATE INDEX erasure_log_by_subject ON erasure_log (tenant_id, subject_digest, erasure_pk DESC);
CREATE TRIGGER erasure_log_no_change BEFORE UPDATE OR DELETE ON erasure_log
  FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER erasure_log_no_truncate BEFORE TRUNCATE ON erasure_log
  FOR EACH STATEMENT EXECUTE FUNCTION append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON erasure_log FROM PUBLIC;
