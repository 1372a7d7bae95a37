-- The system of record of the voucher platform: programs, campaigns and their rounds,
-- merchants, persisted vouchers, and the append-only event log written by the persister.
-- Money is integer fen (bigint). Never edit this file once applied: add a new migration.

CREATE TABLE programs (
    id               bigserial   PRIMARY KEY,
    name             text        NOT NULL,
    funder_place     integer     NOT NULL,
    province_ratio_bp integer    NOT NULL CHECK (province_ratio_bp BETWEEN 0 AND 10000),
    pool_fen         bigint      NOT NULL CHECK (pool_fen >= 0),
    county_cofund_bp integer     NULL CHECK (county_cofund_bp BETWEEN 0 AND 10000),
    refund_policy    text        NOT NULL CHECK (refund_policy IN ('restore', 'forfeit')),
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE program_city_allocations (
    program_id     bigint  NOT NULL REFERENCES programs (id),
    city           integer NOT NULL,
    allocation_fen bigint  NOT NULL CHECK (allocation_fen >= 0),
    PRIMARY KEY (program_id, city)
);

CREATE TABLE campaigns (
    id                  bigserial   PRIMARY KEY,
    program_id          bigint      NOT NULL REFERENCES programs (id),
    name                text        NOT NULL,
    owner_place         integer     NOT NULL,
    category            text        NOT NULL CHECK (category IN
                            ('catering', 'lodging', 'culture_tourism', 'home_furnishing', 'general')),
    rule                jsonb       NOT NULL,
    stock               integer     NOT NULL CHECK (stock > 0),
    per_person_limit    integer     NOT NULL CHECK (per_person_limit > 0),
    validity_days       integer     NULL CHECK (validity_days > 0),
    valid_ends_at       timestamptz NULL,
    budget_fen          bigint      NOT NULL CHECK (budget_fen > 0),
    eligible_places     integer[]   NOT NULL DEFAULT '{}',
    min_real_name_level smallint    NOT NULL DEFAULT 0 CHECK (min_real_name_level BETWEEN 0 AND 3),
    distribution        text        NOT NULL CHECK (distribution IN ('claim', 'list')),
    status              text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (validity_days IS NOT NULL OR valid_ends_at IS NOT NULL)
);
CREATE INDEX campaigns_program_idx ON campaigns (program_id);

CREATE TABLE rounds (
    campaign_id bigint      NOT NULL REFERENCES campaigns (id),
    round_no    integer     NOT NULL CHECK (round_no > 0),
    starts_at   timestamptz NOT NULL,
    quantity    integer     NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (campaign_id, round_no)
);

-- A minimal merchant table; the redemption service extends it with its own migration.
CREATE TABLE merchants (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    credit_code text        NOT NULL,
    category    text        NOT NULL CHECK (category IN
                    ('catering', 'lodging', 'culture_tourism', 'home_furnishing', 'general')),
    city        integer     NOT NULL,
    county      integer     NULL,
    status      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vouchers (
    voucher_id   uuid        PRIMARY KEY,
    campaign_id  bigint      NOT NULL REFERENCES campaigns (id),
    person_id    text        NOT NULL,
    claim_id     uuid        NOT NULL UNIQUE,
    round_no     integer     NOT NULL CHECK (round_no >= 0),
    source       text        NOT NULL CHECK (source IN ('rush', 'list')),
    status       text        NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'redeemed', 'expired')),
    claimed_at   timestamptz NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    expired_at   timestamptz NULL,
    recycled_at  timestamptz NULL,
    persisted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vouchers_person_idx ON vouchers (person_id, claimed_at DESC);
CREATE INDEX vouchers_due_idx ON vouchers (status, valid_until) WHERE status = 'issued';
CREATE INDEX vouchers_campaign_idx ON vouchers (campaign_id);
-- Expired vouchers whose stock has not yet gone back to Redis (the expiry job's second step).
CREATE INDEX vouchers_unrecycled_idx ON vouchers (voucher_id) WHERE status = 'expired' AND recycled_at IS NULL;

-- The append-only event log. `payload` is the encoded EventEnvelope (the contract);
-- `payload_json` a readable rendering of the same fields for people and ad-hoc queries.
CREATE TABLE events (
    seq          bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    campaign_id  bigint      NOT NULL,
    kind         text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    payload      bytea       NOT NULL,
    payload_json jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_campaign_idx ON events (campaign_id, seq);
CREATE INDEX events_kind_idx ON events (kind, occurred_at);

CREATE FUNCTION events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Outbox entries the persister could not decode: kept for inspection, never retried.
CREATE TABLE dead_letters (
    id          bigserial   PRIMARY KEY,
    stream      text        NOT NULL,
    entry_id    text        NOT NULL,
    payload     bytea       NULL,
    reason      text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, entry_id)
);
