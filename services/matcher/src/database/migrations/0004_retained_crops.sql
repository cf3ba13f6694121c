-- Aligned crops kept (opt-in: only under a consent with retain_aligned_crops) so that a subject's
-- templates can be re-created when the embedding model changes. Sealed like the vectors, under the
-- subject's data key (nonce and tag: 28 bytes): erasure and crypto-shredding cover them alike.

ALTER TABLE consents ADD COLUMN retain_aligned_crops boolean NOT NULL DEFAULT false;

ALTER TABLE templates ADD COLUMN crop bytea;
ALTER TABLE templates ADD COLUMN crop_width integer;
ALTER TABLE templates ADD COLUMN crop_height integer;
ALTER TABLE templates ADD CONSTRAINT templates_crop_shape CHECK (
  (crop IS NULL AND crop_width IS NULL AND crop_height IS NULL)
  OR (crop_width BETWEEN 1 AND 1024 AND crop_height BETWEEN 1 AND 1024 AND length(crop) = crop_width * crop_height * 3 + 28)
);
