-- The gallery: tenants, subjects, their consent records and face templates, the stored responses
-- that make enrolment idempotent, and the change log the matchers' in-memory indexes follow.
-- Never images: a template holds the embedding and a hash of its source image.

CREATE TABLE tenants (
  tenant_id text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  default_target_far double precision NOT NULL CHECK (default_target_far > 0 AND default_target_far < 1),
  create_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subjects (
  subject_pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
  -- Byte order ("C"), so that pages are ordered alike on every server and locale.
  subject_id text COLLATE "C" NOT NULL CHECK (subject_id ~ '^[A-Za-z0-9._:@-]{1,128}$'),
  metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, subject_id)
);

-- Append-only: each enrolment records the consent (or other legal basis) it was given under.
CREATE TABLE consents (
  consent_pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subject_pk bigint NOT NULL REFERENCES subjects ON DELETE CASCADE,
  legal_basis smallint NOT NULL CHECK (legal_basis > 0),
  purpose text NOT NULL CHECK (purpose ~ '^[a-z][a-z0-9_]{0,63}$'),
  given_at timestamptz NOT NULL,
  collection_point text NOT NULL CHECK (length(collection_point) BETWEEN 1 AND 256),
  retention_days integer NOT NULL CHECK (retention_days >= 1),
  evidence_ref text NOT NULL DEFAULT '' CHECK (length(evidence_ref) <= 256),
  retain_until timestamptz NOT NULL,
  record_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_by_subject ON consents (subject_pk, consent_pk DESC);
CREATE INDEX consents_by_retention ON consents (retain_until);

CREATE TABLE templates (
  template_pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  template_id uuid NOT NULL UNIQUE,
  tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
  subject_pk bigint NOT NULL REFERENCES subjects ON DELETE CASCADE,
  model_name text NOT NULL CHECK (model_name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  model_version integer NOT NULL CHECK (model_version > 0),
  model_sha256 text NOT NULL CHECK (model_sha256 ~ '^[0-9a-f]{64}$'),
  dim integer NOT NULL CHECK (dim BETWEEN 1 AND 4096),
  vector bytea NOT NULL CHECK (length(vector) = 4 * dim),
  quality real NOT NULL CHECK (quality >= 0 AND quality <= 1),
  source_image_sha256 text NOT NULL DEFAULT '' CHECK (source_image_sha256 ~ '^([0-9a-f]{64})?$'),
  create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX templates_by_subject ON templates (subject_pk);
CREATE INDEX templates_by_partition ON templates (tenant_id, model_name, model_version);

-- One row per enrolment request id: the request's digest and the response to replay.
CREATE TABLE enroll_requests (
  tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
  request_id text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 128),
  request_sha256 text NOT NULL,
  subject_pk bigint REFERENCES subjects ON DELETE CASCADE,
  response bytea,
  create_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, request_id)
);
CREATE INDEX enroll_requests_by_subject ON enroll_requests (subject_pk);

-- Template additions and removals in commit order (writers serialise their inserts here with a
-- transaction-level advisory lock), which every matcher replica applies to its index.
CREATE TABLE template_changes (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  op text NOT NULL CHECK (op IN ('add', 'remove')),
  template_pk bigint NOT NULL,
  tenant_id text NOT NULL,
  model_name text NOT NULL,
  model_version integer NOT NULL,
  change_time timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX template_changes_by_time ON template_changes (change_time);
