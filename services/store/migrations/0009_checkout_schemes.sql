-- The checkout's side of the seeds' other schemes (issue 12): the 以旧换新 per-item discount's
-- per-person per-category item counts and the lines each redemption subsidised, and the
-- programs' extra rules on certified attributes (green / new-energy products) with their own
-- budget, per-person use and what each redemption was granted. The annual card needs no table:
-- its once-only subsidy is the person's entitlement row (cap = the subsidy).
-- Never edit this file once applied.

-- What one person has had subsidised of a product category under a per-item campaign. The
-- limit is the rule's (from the voucher token) when the row is made; a checkout charges it
-- with `… WHERE used_items + q <= limit_items`, a full refund or a released hold gives the
-- items back.
CREATE TABLE item_category_counts (
    campaign_id      bigint  NOT NULL REFERENCES campaigns (id),
    person_id        text    NOT NULL,
    product_category text    NOT NULL,
    limit_items      integer NOT NULL CHECK (limit_items > 0),
    used_items       integer NOT NULL DEFAULT 0,
    CHECK (used_items BETWEEN 0 AND limit_items),
    PRIMARY KEY (campaign_id, person_id, product_category)
);

-- The lines of a per-item redemption as priced: what each item and each line got. The items
-- are what a full refund or a released hold gives back to the counts above.
CREATE TABLE redemption_items (
    redemption_id    uuid    NOT NULL REFERENCES redemptions (id),
    line_no          integer NOT NULL CHECK (line_no >= 0),
    product_category text    NOT NULL,
    unit_price_fen   bigint  NOT NULL CHECK (unit_price_fen > 0),
    quantity         integer NOT NULL CHECK (quantity > 0),
    per_item_fen     bigint  NOT NULL CHECK (per_item_fen >= 0),
    discount_fen     bigint  NOT NULL CHECK (discount_fen >= 0),
    PRIMARY KEY (redemption_id, line_no)
);

-- An extra rule of a program on a certified attribute (000 item 63, 003 §(十八)): a voucher
-- redeemed on lines certified for `attribute` gets ⌊base × rate⌋, at most `cap_per_order_fen`,
-- at most what is left of `per_person_cap_fen` (when set) and of the rule's own budget
-- (`budget_fen − used_fen`). Switched off (`active`), never deleted: its figures stay.
CREATE TABLE program_extra_rules (
    program_id         bigint      NOT NULL REFERENCES programs (id),
    attribute          text        NOT NULL CHECK (attribute ~ '^[a-z][a-z0-9_]{0,31}$'),
    rate_bp            integer     NOT NULL CHECK (rate_bp BETWEEN 1 AND 10000),
    cap_per_order_fen  bigint      NOT NULL CHECK (cap_per_order_fen > 0),
    per_person_cap_fen bigint      NULL CHECK (per_person_cap_fen > 0),
    budget_fen         bigint      NOT NULL CHECK (budget_fen > 0),
    used_fen           bigint      NOT NULL DEFAULT 0,
    active             boolean     NOT NULL DEFAULT true,
    updated_by         text        NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK (used_fen BETWEEN 0 AND budget_fen),
    PRIMARY KEY (program_id, attribute)
);

-- What one person has been granted of an extra rule (kept for every rule, so that a per-person
-- cap set later counts what came before).
CREATE TABLE extra_person_usage (
    program_id bigint NOT NULL,
    attribute  text   NOT NULL,
    person_id  text   NOT NULL,
    used_fen   bigint NOT NULL DEFAULT 0 CHECK (used_fen >= 0),
    PRIMARY KEY (program_id, attribute, person_id),
    FOREIGN KEY (program_id, attribute) REFERENCES program_extra_rules (program_id, attribute)
);

-- What a redemption was granted by an extra rule, and what reversals gave back of it. The
-- settlement reads `subsidy_lines` (written at the sale or the capture, and one negative line
-- per reversal); this row is what reversals, releases and the terminal's views work from.
CREATE TABLE redemption_extras (
    redemption_id uuid    NOT NULL REFERENCES redemptions (id),
    attribute     text    NOT NULL,
    program_id    bigint  NOT NULL,
    person_id     text    NOT NULL,
    base_fen      bigint  NOT NULL CHECK (base_fen > 0),
    amount_fen    bigint  NOT NULL CHECK (amount_fen > 0),
    reversed_fen  bigint  NOT NULL DEFAULT 0,
    city          integer NOT NULL,
    county        integer NULL,
    certificates  jsonb   NOT NULL,
    CHECK (reversed_fen BETWEEN 0 AND amount_fen),
    PRIMARY KEY (redemption_id, attribute),
    FOREIGN KEY (program_id, attribute) REFERENCES program_extra_rules (program_id, attribute)
);
