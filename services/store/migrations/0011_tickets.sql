-- Scenic-spot first-entry ticket subsidies (门票补贴, seed 001 item 13): a city's (or a
-- county's) scheme with two programs — the province's part and the city's part — and a
-- per-ticket rule; the ticket sales the scenic spots' signed terminals report, with the
-- per-ticket amounts the rule gave them; and refunds of some of a sale's tickets. Each
-- eligible sale (and each refund of one) writes its `subsidy_lines` rows (0006) in the same
-- transaction. Money is integer fen. Never edit this file once applied.

-- A scheme. The rule is configuration, in columns so that the database checks it:
-- `max_sale_ratio_bp` (8000: sold at 80% of the list price or less), the province's part
-- (rate of a basis, optional cap per ticket, or none at all) and the city's part (rate of
-- the sale price, optional cap per ticket). Sales count in [starts_at, ends_at). Not
-- changed once created: recorded sales were computed from it.
CREATE TABLE ticket_schemes (
    id                          bigserial   PRIMARY KEY,
    name                        text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    owner_place                 integer     NOT NULL CHECK (owner_place BETWEEN 110000 AND 999999 AND owner_place % 10000 <> 0),
    province_program_id         bigint      NOT NULL REFERENCES programs (id),
    city_program_id             bigint      NOT NULL REFERENCES programs (id),
    max_sale_ratio_bp           integer     NOT NULL CHECK (max_sale_ratio_bp BETWEEN 1 AND 10000),
    province_basis              text        NULL CHECK (province_basis IN ('discount', 'sale_price', 'list_price')),
    province_rate_bp            integer     NULL CHECK (province_rate_bp BETWEEN 1 AND 10000),
    province_per_ticket_cap_fen bigint      NULL CHECK (province_per_ticket_cap_fen > 0),
    city_rate_bp                integer     NOT NULL CHECK (city_rate_bp BETWEEN 0 AND 10000),
    city_per_ticket_cap_fen     bigint      NULL CHECK (city_per_ticket_cap_fen > 0),
    starts_at                   timestamptz NOT NULL,
    ends_at                     timestamptz NOT NULL,
    created_by                  text        NOT NULL,
    created_at                  timestamptz NOT NULL,
    CHECK (starts_at < ends_at),
    CHECK (province_program_id <> city_program_id),
    -- The province's part is all there (basis and rate) or not at all.
    CHECK ((province_basis IS NULL) = (province_rate_bp IS NULL)),
    CHECK (province_basis IS NOT NULL OR province_per_ticket_cap_fen IS NULL),
    -- A scheme pays something.
    CHECK (province_basis IS NOT NULL OR city_rate_bp > 0)
);
CREATE INDEX ticket_schemes_owner_idx ON ticket_schemes (owner_place, id);

-- A ticket sale as the scenic spot's terminal reported it. `sale_ref` is the spot's own
-- reference, unique per merchant (a report sent twice is recorded once). The per-ticket
-- amounts are what the scheme's rule gave (both 0 when not eligible); totals are
-- `quantity ×` them, and a refund of q tickets gives back exactly `q ×` them.
CREATE TABLE ticket_sales (
    id                      uuid        PRIMARY KEY,
    scheme_id               bigint      NOT NULL REFERENCES ticket_schemes (id),
    merchant_id             text        NOT NULL REFERENCES merchants (id),
    terminal_id             uuid        NOT NULL REFERENCES terminals (terminal_id),
    sale_ref                text        NOT NULL CHECK (length(sale_ref) BETWEEN 1 AND 64),
    list_price_fen          bigint      NOT NULL CHECK (list_price_fen > 0),
    sale_price_fen          bigint      NOT NULL CHECK (sale_price_fen > 0),
    quantity                integer     NOT NULL CHECK (quantity > 0),
    eligible                boolean     NOT NULL,
    province_per_ticket_fen bigint      NOT NULL CHECK (province_per_ticket_fen >= 0),
    city_per_ticket_fen     bigint      NOT NULL CHECK (city_per_ticket_fen >= 0),
    refunded_quantity       integer     NOT NULL DEFAULT 0,
    sold_at                 timestamptz NOT NULL,
    UNIQUE (merchant_id, sale_ref),
    CHECK (sale_price_fen <= list_price_fen),
    CHECK (eligible OR (province_per_ticket_fen = 0 AND city_per_ticket_fen = 0)),
    CHECK (province_per_ticket_fen + city_per_ticket_fen <= sale_price_fen),
    CHECK (refunded_quantity BETWEEN 0 AND quantity)
);
CREATE INDEX ticket_sales_scheme_idx ON ticket_sales (scheme_id, sold_at);
CREATE INDEX ticket_sales_merchant_idx ON ticket_sales (merchant_id, sold_at);

-- A refund of some of a sale's tickets: idempotent on (sale, refund_ref). The amounts are
-- what it gave back (quantity × the sale's per-ticket amounts).
CREATE TABLE ticket_refunds (
    id           uuid        PRIMARY KEY,
    sale_id      uuid        NOT NULL REFERENCES ticket_sales (id),
    refund_ref   text        NOT NULL CHECK (length(refund_ref) BETWEEN 1 AND 64),
    quantity     integer     NOT NULL CHECK (quantity > 0),
    province_fen bigint      NOT NULL CHECK (province_fen >= 0),
    city_fen     bigint      NOT NULL CHECK (city_fen >= 0),
    created_at   timestamptz NOT NULL,
    UNIQUE (sale_id, refund_ref)
);
CREATE INDEX ticket_refunds_sale_idx ON ticket_refunds (sale_id, created_at);
