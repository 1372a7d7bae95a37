-- 报名摇号: lottery rounds. A round is a rush (the default, every round before this
-- migration) or a lottery with a registration window that closes at or before the round's
-- start. A lottery round has a secret seed, made when the round is recorded, whose SHA-256
-- (the commitment) is published at once; registrations, one per person; and, after the
-- draw, its winners and what issuing their vouchers gave. Never edit this file once
-- applied: add a new migration.

ALTER TABLE rounds
    ADD COLUMN mode                   text        NOT NULL DEFAULT 'rush' CHECK (mode IN ('rush', 'lottery')),
    ADD COLUMN registration_opens_at  timestamptz NULL,
    ADD COLUMN registration_closes_at timestamptz NULL,
    ADD CONSTRAINT rounds_lottery_window CHECK (
        (mode = 'rush' AND registration_opens_at IS NULL AND registration_closes_at IS NULL)
        OR (mode = 'lottery' AND registration_opens_at < registration_closes_at
            AND registration_closes_at <= starts_at));

-- One row per lottery round, written in the transaction that records the round. `seed` is
-- the secret: no query serves it before `drawn_at` is set. The draw fills the last three
-- columns once, under this row's lock.
CREATE TABLE lottery_rounds (
    campaign_id   bigint      NOT NULL,
    round_no      integer     NOT NULL,
    seed          bytea       NOT NULL CHECK (length(seed) = 32),
    commitment    bytea       NOT NULL CHECK (length(commitment) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    drawn_at      timestamptz NULL,
    quantity      integer     NULL CHECK (quantity > 0),
    registrations integer     NULL CHECK (registrations >= 0),
    PRIMARY KEY (campaign_id, round_no),
    FOREIGN KEY (campaign_id, round_no) REFERENCES rounds (campaign_id, round_no),
    CHECK ((drawn_at IS NULL) = (quantity IS NULL) AND (drawn_at IS NULL) = (registrations IS NULL))
);

-- One entry per person and round: the primary key is what makes registration idempotent
-- under concurrent requests (INSERT … ON CONFLICT ON CONSTRAINT lottery_registrations_pkey
-- DO NOTHING). `registration_hash` is the published form of the entry (see
-- voucher_core::lottery), unique like the person it stands for.
CREATE TABLE lottery_registrations (
    campaign_id       bigint      NOT NULL,
    round_no          integer     NOT NULL,
    person_id         text        NOT NULL,
    registration_hash bytea       NOT NULL CHECK (length(registration_hash) = 32),
    registered_at     timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, round_no, person_id),
    UNIQUE (campaign_id, round_no, registration_hash),
    FOREIGN KEY (campaign_id, round_no) REFERENCES lottery_rounds (campaign_id, round_no)
);

-- The winners of a drawn round, rank 1 first, written with the draw. `claim_id` is the
-- deterministic claim id of the winner's voucher; `status` says what issuing gave:
-- `pending` (not yet issued, or the store failed: the next draw call retries it), `issued`
-- (with the voucher id) or `refused` (the claim script said no: per-person limit, stock;
-- final, that stock stays for the next round).
CREATE TABLE lottery_winners (
    campaign_id       bigint      NOT NULL,
    round_no          integer     NOT NULL,
    rank              integer     NOT NULL CHECK (rank > 0),
    registration_hash bytea       NOT NULL,
    person_id         text        NOT NULL,
    claim_id          uuid        NOT NULL UNIQUE,
    status            text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'issued', 'refused')),
    voucher_id        uuid        NULL,
    reason            text        NULL,
    decided_at        timestamptz NULL,
    PRIMARY KEY (campaign_id, round_no, rank),
    UNIQUE (campaign_id, round_no, person_id),
    FOREIGN KEY (campaign_id, round_no, person_id)
        REFERENCES lottery_registrations (campaign_id, round_no, person_id),
    CHECK ((status = 'issued') = (voucher_id IS NOT NULL))
);
