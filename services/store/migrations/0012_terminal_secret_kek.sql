-- Terminal HMAC secrets encrypted at rest (issue 13, "Secrets").
--
-- Until now `terminals.secret` held each terminal's HMAC secret as is, so a database dump
-- was enough to sign terminal requests. From here on the redemption service seals every
-- secret with a key-encryption key (KEK) from its secrets directory (`terminal-kek.json`),
-- AES-256-GCM through ring: a random 96-bit nonce per seal, the KEK's id stored beside the
-- ciphertext, and associated data binding the ciphertext to its terminal id, key id and KEK
-- id, so a ciphertext copied into another row does not open. The database never sees the
-- KEK nor a plaintext secret.
--
-- Existing rows: SQL cannot encrypt (the KEK is not in the database), so this migration
-- only makes room. The redemption service seals every row that still holds plaintext when
-- it starts, before it serves (and `redemption rewrap-secrets` does it too); a sealed row
-- has `secret` NULL. The CHECK below allows a row to be plaintext-only (as an older
-- version wrote it) or sealed-only, never both. Verification accepts sealed rows only.
--
-- The column `secret` stays (nullable) for those older writers and for the seal at start;
-- a later migration drops it once every deployment has run this version once
-- (`SELECT count(*) FROM terminals WHERE secret IS NOT NULL` answers 0).
ALTER TABLE terminals
    ALTER COLUMN secret DROP NOT NULL,
    ADD COLUMN kek_id            integer NULL CHECK (kek_id > 0),
    ADD COLUMN secret_nonce      bytea   NULL CHECK (octet_length(secret_nonce) = 12),
    ADD COLUMN secret_ciphertext bytea   NULL CHECK (octet_length(secret_ciphertext) > 16),
    ADD CONSTRAINT terminals_secret_sealed_or_plain CHECK (
        (secret IS NULL AND kek_id IS NOT NULL AND secret_nonce IS NOT NULL
             AND secret_ciphertext IS NOT NULL)
        OR (secret IS NOT NULL AND kek_id IS NULL AND secret_nonce IS NULL
             AND secret_ciphertext IS NULL));

-- What the re-wrap and the retirement of a KEK look for: rows sealed under a given KEK.
CREATE INDEX terminals_kek_idx ON terminals (kek_id);
