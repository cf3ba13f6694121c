-- The gallery's identity: a random id made once, so that what a replica keeps outside the database
-- (its index snapshots) is known to belong to this gallery and no other (a restored backup, another
-- schema, another cluster).
CREATE TABLE gallery_identity (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  gallery_id uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO gallery_identity DEFAULT VALUES;
