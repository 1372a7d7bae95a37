-- The reconciliation job: settlement runs (one per program and period), settlement batches
-- (one per city of a run, confirmed step by step), their lines per county and merchant, and
-- the double-entry ledger (accounts and postings; Σ postings of a batch = 0). Money is integer
-- fen (bigint); a period's spending may be negative (reversals count when they happen).
-- Never edit this file once applied: add a new migration.

-- One settlement of one program over a period of Beijing days [period_start, period_end].
-- Unique per program and period: re-running a settled period finds it and writes nothing.
CREATE TABLE settlement_runs (
    id              bigserial   PRIMARY KEY,
    program_id      bigint      NOT NULL REFERENCES programs (id),
    period_start    date        NOT NULL,
    period_end      date        NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    program_name    text        NOT NULL,
    ratio_bp        integer     NOT NULL,
    county_cofund_bp integer    NULL,
    pool_fen        bigint      NOT NULL,
    pool_before_fen bigint      NOT NULL CHECK (pool_before_fen >= 0),
    pool_after_fen  bigint      NOT NULL CHECK (pool_after_fen >= 0),
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL,
    CHECK (period_end >= period_start),
    CHECK (ends_at > starts_at),
    UNIQUE (program_id, period_start, period_end)
);

-- One city's part of a run: what the city confirms and the province pays.
CREATE TABLE settlement_batches (
    id                bigserial PRIMARY KEY,
    run_id            bigint    NOT NULL REFERENCES settlement_runs (id),
    program_id        bigint    NOT NULL REFERENCES programs (id),
    city              integer   NOT NULL,
    status            text      NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'city_confirmed', 'province_confirmed', 'paid')),
    granted_fen       bigint    NOT NULL,
    reversed_fen      bigint    NOT NULL,
    spending_fen      bigint    NOT NULL,
    claim_fen         bigint    NOT NULL,
    province_fen      bigint    NOT NULL,
    local_fen         bigint    NOT NULL,
    city_fen          bigint    NOT NULL,
    county_fen        bigint    NOT NULL,
    allocation_fen    bigint    NULL,
    paid_before_fen   bigint    NOT NULL CHECK (paid_before_fen >= 0),
    limit_kind        text      NOT NULL,
    redemptions       bigint    NOT NULL,
    reversals         bigint    NOT NULL,
    CHECK (spending_fen = granted_fen - reversed_fen),
    CHECK (spending_fen = province_fen + city_fen + county_fen),
    CHECK (local_fen = city_fen + county_fen),
    CHECK (paid_before_fen + province_fen >= 0),
    UNIQUE (run_id, city)
);
CREATE INDEX settlement_batches_program_city_idx ON settlement_batches (program_id, city);

-- A county's co-funded part of a batch (county-issued campaigns only).
CREATE TABLE settlement_county_shares (
    batch_id     bigint  NOT NULL REFERENCES settlement_batches (id),
    county       integer NOT NULL,
    spending_fen bigint  NOT NULL,
    county_fen   bigint  NOT NULL,
    PRIMARY KEY (batch_id, county)
);

-- What a batch owes each merchant: full discounts granted − reversed (POLICY rule 8).
-- The merchant's name is copied so that a report re-printed later is the same byte for byte.
CREATE TABLE settlement_merchant_lines (
    batch_id      bigint NOT NULL REFERENCES settlement_batches (id),
    merchant_id   text   NOT NULL REFERENCES merchants (id),
    merchant_name text   NOT NULL,
    granted_fen   bigint NOT NULL,
    reversed_fen  bigint NOT NULL,
    payable_fen   bigint NOT NULL,
    redemptions   bigint NOT NULL,
    reversals     bigint NOT NULL,
    CHECK (payable_fen = granted_fen - reversed_fen),
    PRIMARY KEY (batch_id, merchant_id)
);

-- Each step of a batch's workflow: who moved it, with which role and place, and when.
CREATE TABLE settlement_batch_steps (
    batch_id bigint      NOT NULL REFERENCES settlement_batches (id),
    status   text        NOT NULL
                 CHECK (status IN ('draft', 'city_confirmed', 'province_confirmed', 'paid')),
    actor    text        NOT NULL,
    role     text        NOT NULL,
    place    integer     NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (batch_id, status)
);

-- Ledger accounts, by a readable code: `provincial_pool:p<program>`, `city_budget:p<program>:<city>`,
-- `county_budget:p<program>:<county>`, `merchant_payable:<merchant>`, `clearing:p<program>`.
CREATE TABLE ledger_accounts (
    code        text        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN
                    ('provincial_pool', 'city_budget', 'county_budget', 'merchant_payable', 'clearing')),
    program_id  bigint      NULL REFERENCES programs (id),
    place       integer     NULL,
    merchant_id text        NULL REFERENCES merchants (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Postings: amount > 0 debits, < 0 credits the account. Funders' accounts are debited with
-- their share against the clearing account, which is then credited to the merchants'
-- payables; the job checks Σ amount = 0 per batch before it commits. Append-only.
CREATE TABLE ledger_postings (
    id           bigserial PRIMARY KEY,
    batch_id     bigint    NOT NULL REFERENCES settlement_batches (id),
    line_no      integer   NOT NULL,
    account_code text      NOT NULL REFERENCES ledger_accounts (code),
    amount_fen   bigint    NOT NULL CHECK (amount_fen <> 0),
    memo         text      NOT NULL,
    UNIQUE (batch_id, line_no)
);
CREATE INDEX ledger_postings_account_idx ON ledger_postings (account_code);

CREATE FUNCTION ledger_postings_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger postings are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER ledger_postings_no_update_or_delete
    BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_postings_append_only();

-- The settlement reads a period by time: sales by creation, captured holds by capture,
-- reversals by creation.
CREATE INDEX redemptions_approved_created_idx ON redemptions (created_at) WHERE status = 'approved';
CREATE INDEX redemptions_captured_resolved_idx ON redemptions (resolved_at) WHERE status = 'captured';
CREATE INDEX reversals_created_idx ON reversals (created_at);
