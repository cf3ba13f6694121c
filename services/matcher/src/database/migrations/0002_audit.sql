-- The audit trail: who did what to which tenant's gallery, when, and with what outcome. Never
-- embeddings or images. Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE for every
-- role (a deployment that runs the matcher as a non-owner role should also revoke them).
--
-- Events name a subject by a random pseudonym, never by its id: erasing a subject deletes its
-- row in subject_pseudonyms, and the events that remain can no longer be tied to the person,
-- without any event being changed.

CREATE TABLE subject_pseudonyms (
  tenant_id text NOT NULL,
  subject_id text COLLATE "C" NOT NULL,
  pseudonym uuid NOT NULL UNIQUE,
  PRIMARY KEY (tenant_id, subject_id)
);

CREATE TABLE audit_events (
  event_pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  event_time timestamptz NOT NULL DEFAULT clock_timestamp(),
  tenant_id text NOT NULL,
  actor text NOT NULL,
  action smallint NOT NULL CHECK (action > 0),
  subject_pseudonym uuid,
  request_id text NOT NULL DEFAULT '',
  outcome smallint NOT NULL CHECK (outcome > 0),
  details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);
CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, event_pk DESC);
CREATE INDEX audit_events_by_subject ON audit_events (subject_pseudonym, event_pk DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC;
