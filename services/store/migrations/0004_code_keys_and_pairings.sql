-- Offline codes and web terminals (issue 10).
--
-- vouchers.code_epoch: the generation of the voucher's code key. A resident's phone may hold
-- the key to draw dynamic codes offline; revoking that key (a lost phone) raises the epoch,
-- and a till refuses codes made with an older one (CODE_REVOKED).
ALTER TABLE vouchers ADD COLUMN code_epoch integer NOT NULL DEFAULT 0 CHECK (code_epoch >= 0);

-- One-time pairing codes for web terminals: an administrator creates a terminal and gets a
-- code; the till's browser exchanges it, once and before it expires, for the terminal's
-- HMAC key. Only the code's SHA-256 is stored.
CREATE TABLE terminal_pairings (
    code_sha256 text        PRIMARY KEY,
    terminal_id uuid        NOT NULL REFERENCES terminals (terminal_id),
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz NULL
);
CREATE INDEX terminal_pairings_terminal_idx ON terminal_pairings (terminal_id);

-- A resident's history (what I spent, where, how much I saved) reads redemptions by person.
CREATE INDEX redemptions_person_idx ON redemptions (person_id, created_at DESC);
