-- The redemption service: merchants and their program approvals, terminals and their HMAC
-- keys, per-person entitlements of percentage (立减) campaigns, the campaign budget split
-- into bucket rows, redemptions (sales and holds), reversals, and stored idempotent
-- responses. Money is integer fen (bigint). Never edit this file once applied.

-- A voucher the persister has not written yet is inserted by the redemption service from its
-- verified signed token (the token is proof of issuance): such rows have source 'token' and
-- a claim id derived from the voucher id (the persister's later insert is then a no-op).
ALTER TABLE vouchers DROP CONSTRAINT vouchers_source_check;
ALTER TABLE vouchers ADD CONSTRAINT vouchers_source_check CHECK (source IN ('rush', 'list', 'token'));

-- Merchants: the minimal table of 0001 plus the settlement account and who created it.
ALTER TABLE merchants ADD COLUMN settlement_account text NOT NULL DEFAULT '';
ALTER TABLE merchants ADD COLUMN created_by text NOT NULL DEFAULT '';
ALTER TABLE merchants ADD CONSTRAINT merchants_credit_code_key UNIQUE (credit_code);

-- Approval of a merchant for a program (a merchant redeems only vouchers of programs it is
-- approved for).
CREATE TABLE merchant_programs (
    merchant_id text        NOT NULL REFERENCES merchants (id),
    program_id  bigint      NOT NULL REFERENCES programs (id),
    approved_by text        NOT NULL,
    approved_at timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, program_id)
);

-- Point-of-sale terminals. `key_id` names the current HMAC key; rotation replaces key and
-- secret. The secret must be readable to verify HMACs, so it is stored as is (base64);
-- production deployments encrypt this column with a KMS key (see the README).
CREATE TABLE terminals (
    terminal_id uuid        PRIMARY KEY,
    merchant_id text        NOT NULL REFERENCES merchants (id),
    key_id      text        NOT NULL UNIQUE,
    secret      text        NOT NULL,
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at  timestamptz NOT NULL,
    rotated_at  timestamptz NULL,
    revoked_at  timestamptz NULL
);
CREATE INDEX terminals_merchant_idx ON terminals (merchant_id);

-- 立减 entitlement: what one person has used of a percentage campaign's per-person cap.
CREATE TABLE entitlements (
    campaign_id bigint NOT NULL REFERENCES campaigns (id),
    person_id   text   NOT NULL,
    cap_fen     bigint NOT NULL CHECK (cap_fen > 0),
    used_fen    bigint NOT NULL DEFAULT 0,
    CHECK (used_fen >= 0 AND used_fen <= cap_fen),
    PRIMARY KEY (campaign_id, person_id)
);

-- A campaign's budget, split into bucket rows so that concurrent checkouts lock different
-- rows instead of queueing on one. Σ remaining + Σ granted − Σ reversed = budget.
CREATE TABLE campaign_budget_buckets (
    campaign_id   bigint NOT NULL REFERENCES campaigns (id),
    bucket        integer NOT NULL CHECK (bucket >= 0),
    remaining_fen bigint NOT NULL CHECK (remaining_fen >= 0),
    PRIMARY KEY (campaign_id, bucket)
);

-- A redemption: a one-step sale, or a hold (authorisation) that is captured, voided or
-- expires. `reversed_fen` is the part of the discount given back by reversals.
CREATE TABLE redemptions (
    id               uuid        PRIMARY KEY,
    merchant_id      text        NOT NULL REFERENCES merchants (id),
    terminal_id      uuid        NOT NULL REFERENCES terminals (terminal_id),
    voucher_id       uuid        NOT NULL REFERENCES vouchers (voucher_id),
    campaign_id      bigint      NOT NULL REFERENCES campaigns (id),
    program_id       bigint      NOT NULL REFERENCES programs (id),
    person_id        text        NOT NULL,
    single_use       boolean     NOT NULL,
    status           text        NOT NULL CHECK (status IN ('approved', 'held', 'captured', 'voided', 'expired')),
    order_ref        text        NOT NULL,
    order_amount_fen bigint      NOT NULL CHECK (order_amount_fen > 0),
    discount_fen     bigint      NOT NULL CHECK (discount_fen >= 0 AND discount_fen <= order_amount_fen),
    refunded_amount_fen bigint   NOT NULL DEFAULT 0 CHECK (refunded_amount_fen >= 0 AND refunded_amount_fen <= order_amount_fen),
    reversed_fen     bigint      NOT NULL DEFAULT 0 CHECK (reversed_fen >= 0 AND reversed_fen <= discount_fen),
    notice           text        NULL,
    hold_expires_at  timestamptz NULL,
    created_at       timestamptz NOT NULL,
    resolved_at      timestamptz NULL,
    UNIQUE (merchant_id, order_ref)
);
CREATE INDEX redemptions_merchant_day_idx ON redemptions (merchant_id, created_at);
CREATE INDEX redemptions_voucher_idx ON redemptions (voucher_id);
CREATE INDEX redemptions_held_idx ON redemptions (hold_expires_at) WHERE status = 'held';

-- A reversal (退货): idempotent on (redemption, reversal_ref).
CREATE TABLE reversals (
    id                  uuid        PRIMARY KEY,
    redemption_id       uuid        NOT NULL REFERENCES redemptions (id),
    reversal_ref        text        NOT NULL,
    refund_amount_fen   bigint      NOT NULL CHECK (refund_amount_fen >= 0),
    discount_reversed_fen bigint    NOT NULL CHECK (discount_reversed_fen >= 0),
    restored            boolean     NOT NULL,
    created_at          timestamptz NOT NULL,
    UNIQUE (redemption_id, reversal_ref)
);

-- Stored responses of terminal requests by idempotency key (kept at least 24 h).
-- `in_flight` rows are the first request still being processed.
CREATE TABLE idempotency_keys (
    merchant_id     text        NOT NULL,
    idem_key        text        NOT NULL,
    request_sha256  text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status integer     NULL,
    response_body   jsonb       NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, idem_key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
