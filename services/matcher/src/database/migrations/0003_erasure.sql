-- Erasure (GDPR Art. 17) with crypto-shredding, and its receipts.
--
-- Template vectors are sealed at rest (AES-256-GCM) under a per-subject data key. The data keys
-- live in their own table, the key store, wrapped by the master key (which never enters the
-- database). Erasing a subject deletes its key with its rows: any copy of its templates left in
-- a gallery backup, WAL archive or replica can then no longer be decrypted once the key store's
-- own (short) backups have expired. See docs/compliance.md.

CREATE TABLE data_keys (
  key_id uuid PRIMARY KEY,
  tenant_id text NOT NULL,
  -- The data key sealed by the master key: nonce, ciphertext and tag.
  wrapped_key bytea NOT NULL CHECK (length(wrapped_key) BETWEEN 32 AND 1024),
  -- Which master key wrapped it, so that master keys can be rotated.
  master_key_id text NOT NULL CHECK (length(master_key_id) BETWEEN 1 AND 128),
  create_time timestamptz NOT NULL DEFAULT now()
);

-- Every subject has a data key from its first enrolment; NULL only for subjects enrolled before
-- this migration, until the matcher seals them at start-up.
ALTER TABLE subjects ADD COLUMN data_key_id uuid UNIQUE;

-- Sealed vectors carry a 12-byte nonce and a 16-byte tag. Templates stored before this migration
-- are plaintext (sealed = false) until the matcher seals them at start-up.
-- (The length check of 0001, named templates_check: it spans two columns.)
ALTER TABLE templates DROP CONSTRAINT templates_check;
ALTER TABLE templates ADD COLUMN sealed boolean NOT NULL DEFAULT false;
ALTER TABLE templates ADD CONSTRAINT templates_vector_length CHECK (length(vector) = 4 * dim + CASE WHEN sealed THEN 28 ELSE 0 END);
CREATE INDEX templates_unsealed ON templates (subject_pk) WHERE NOT sealed;

-- One row per erasure: the signed receipt, returned again to a repeated request. Append-only.
-- It keeps the external subject id and the request reference: the evidence that the erasure
-- happened (Art. 5(2)), never anything biometric.
CREATE TABLE erasures (
  erasure_pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  receipt_id uuid NOT NULL UNIQUE,
  tenant_id text NOT NULL,
  subject_id text COLLATE "C" NOT NULL,
  request_ref text NOT NULL,
  reason smallint NOT NULL CHECK (reason > 0),
  erased_at timestamptz NOT NULL,
  -- The ErasureReceipt message (protobuf binary), exactly as first returned.
  receipt bytea NOT NULL
);
CREATE INDEX erasures_by_subject ON erasures (tenant_id, subject_id, erasure_pk DESC);

CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER erasures_no_change BEFORE UPDATE OR DELETE ON erasures
  FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER erasures_no_truncate BEFORE TRUNCATE ON erasures
  FOR EACH STATEMENT EXECUTE FUNCTION append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON erasures FROM PUBLIC;
