-- API keys managed through the gateway (faceprint keys ...), shared by every gateway replica.
-- Secrets are never stored: the gateway sends the sha256 of each, and looks keys up by it. Keys
-- from the gateway's static keys file (the bootstrap admin key, the local mesh's development
-- keys) are not here.
CREATE TABLE api_keys (
  tenant_id text NOT NULL,
  key_id text COLLATE "C" NOT NULL,
  roles text[] NOT NULL CHECK (cardinality(roles) > 0),
  secret_sha256 bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
  -- The secret before the last rotation, accepted until previous_secret_expires_at.
  previous_secret_sha256 bytea UNIQUE CHECK (length(previous_secret_sha256) = 32),
  previous_secret_expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL,
  rotated_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  PRIMARY KEY (tenant_id, key_id)
);
