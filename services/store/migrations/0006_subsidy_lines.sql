-- The seeds' other schemes (issue 12) settle through the same programs, ledger and split as
-- vouchers. Redemptions and reversals stay where they are (the checkout's hot path); every
-- other subsidy a scheme creates is ONE row here, and the settlement aggregates these rows
-- with the redemptions: car trade-in approvals (paid to the resident), scenic-ticket
-- subsidies and the annual card (paid to the scenic spot), green top-ups (paid to the
-- merchant, settled as their own line).
--
-- `amount_fen` > 0 is granted, < 0 given back (a reversal writes a negative row of its own).
-- `source` names what created the row and is unique, so writing it twice is a no-op.
-- `counted_at` is the instant that puts the row in a settlement period (an approval, a sale).
-- `city` is the settlement city (whose allocation it draws on); `county` a co-funding county.
CREATE TABLE subsidy_lines (
    id          uuid        PRIMARY KEY,
    source      text        NOT NULL UNIQUE,
    kind        text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_:.-]{0,63}$'),
    program_id  bigint      NOT NULL REFERENCES programs (id),
    campaign_id bigint      NULL REFERENCES campaigns (id),
    city        integer     NOT NULL,
    county      integer     NULL,
    payee_kind  text        NOT NULL CHECK (payee_kind IN ('merchant', 'resident')),
    merchant_id text        NULL REFERENCES merchants (id),
    person_id   text        NULL,
    amount_fen  bigint      NOT NULL CHECK (amount_fen <> 0),
    counted_at  timestamptz NOT NULL,
    detail      jsonb       NULL,
    CHECK ((payee_kind = 'merchant') = (merchant_id IS NOT NULL)),
    CHECK ((payee_kind = 'resident') = (person_id IS NOT NULL))
);
CREATE INDEX subsidy_lines_counted_idx ON subsidy_lines (counted_at);
CREATE INDEX subsidy_lines_program_idx ON subsidy_lines (program_id, counted_at);

-- Funds advanced by a program to a merchant before its sales (预拨资金, 002 §(十五)). The
-- settlement nets what the merchant granted against what is still advanced; the ledger shows
-- the advance, its drawdown and the balance owed in either direction.
CREATE TABLE merchant_advances (
    id          bigserial   PRIMARY KEY,
    program_id  bigint      NOT NULL REFERENCES programs (id),
    merchant_id text        NOT NULL REFERENCES merchants (id),
    amount_fen  bigint      NOT NULL CHECK (amount_fen > 0),
    reference   text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (program_id, merchant_id, reference)
);
CREATE INDEX merchant_advances_merchant_idx ON merchant_advances (merchant_id, program_id);
