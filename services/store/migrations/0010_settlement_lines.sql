-- Settlement of the other schemes (issue 12): their subsidy lines per batch, resident
-- payables in the ledger, and merchant advances (预拨资金) with their drawdowns.

-- What a batch owes for the other schemes' subsidies, per kind and payee (a merchant or a
-- resident): granted − given back. The payee's name is copied, as for merchant lines.
CREATE TABLE settlement_subsidy_lines (
    batch_id     bigint NOT NULL REFERENCES settlement_batches (id),
    kind         text   NOT NULL,
    payee_kind   text   NOT NULL CHECK (payee_kind IN ('merchant', 'resident')),
    payee_id     text   NOT NULL,
    payee_name   text   NOT NULL,
    granted_fen  bigint NOT NULL,
    reversed_fen bigint NOT NULL,
    payable_fen  bigint NOT NULL,
    lines        bigint NOT NULL,
    CHECK (payable_fen = granted_fen - reversed_fen),
    PRIMARY KEY (batch_id, kind, payee_kind, payee_id)
);

-- How a batch netted a merchant's payable against the program's advance to it: what was
-- outstanding before, what this batch drew down, what remains outstanding after.
CREATE TABLE settlement_advance_lines (
    batch_id          bigint NOT NULL REFERENCES settlement_batches (id),
    merchant_id       text   NOT NULL REFERENCES merchants (id),
    payable_fen       bigint NOT NULL,
    outstanding_before_fen bigint NOT NULL CHECK (outstanding_before_fen >= 0),
    drawdown_fen      bigint NOT NULL CHECK (drawdown_fen >= 0),
    outstanding_after_fen  bigint NOT NULL CHECK (outstanding_after_fen >= 0),
    net_payable_fen   bigint NOT NULL,
    CHECK (outstanding_after_fen = outstanding_before_fen - drawdown_fen),
    CHECK (net_payable_fen = payable_fen - drawdown_fen),
    PRIMARY KEY (batch_id, merchant_id)
);

-- Ledger: residents are payees too (car trade-in), and an advance is an asset of the
-- program (what the merchant holds and has not yet earned), paid out of its disbursement
-- account. An advance's own postings belong to the advance, not to a batch.
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN
    ('provincial_pool', 'city_budget', 'county_budget', 'merchant_payable', 'clearing',
     'resident_payable', 'merchant_advance', 'advance_disbursement'));
ALTER TABLE ledger_accounts ADD COLUMN person_id text NULL;

ALTER TABLE ledger_postings ALTER COLUMN batch_id DROP NOT NULL;
ALTER TABLE ledger_postings ADD COLUMN advance_id bigint NULL REFERENCES merchant_advances (id);
ALTER TABLE ledger_postings ADD CONSTRAINT ledger_postings_owner_check
    CHECK ((batch_id IS NULL) <> (advance_id IS NULL));
CREATE UNIQUE INDEX ledger_postings_advance_line_idx ON ledger_postings (advance_id, line_no)
    WHERE advance_id IS NOT NULL;
