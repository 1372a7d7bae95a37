-- Car trade-in subsidy (汽车以旧换新, seed 004 §二(一)): an application with a review, paid
-- on documents (持相关手续). A resident uploads the papers (stored by content hash), applies
-- under a program's scheme, the city's commerce bureau reviews, and only the approval
-- creates the payable: ONE row of `subsidy_lines` (0006), written in the approval's
-- transaction. Money is integer fen.

-- The scheme of a program: its window (whole Beijing days, both ends included) and its
-- money terms (a cap per kind, an optional rate of the new car's price). Configuration,
-- never constants; not changed once created (approved amounts were computed from it).
CREATE TABLE trade_in_schemes (
    program_id       bigint      PRIMARY KEY REFERENCES programs (id),
    opens_on         date        NOT NULL,
    closes_on        date        NOT NULL,
    transfer_cap_fen bigint      NOT NULL CHECK (transfer_cap_fen > 0),
    scrap_cap_fen    bigint      NOT NULL CHECK (scrap_cap_fen > 0),
    price_rate_bp    integer     NULL CHECK (price_rate_bp BETWEEN 1 AND 10000),
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK (opens_on <= closes_on)
);

-- Uploaded papers. The bytes live ONCE in the documents directory, in a file named by their
-- SHA-256; each uploader has a row of their own, so an application can only cite documents
-- its applicant uploaded.
CREATE TABLE trade_in_documents (
    sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    uploaded_by  text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes > 0),
    content_type text        NOT NULL CHECK (content_type IN ('application/pdf', 'image/jpeg', 'image/png')),
    uploaded_at  timestamptz NOT NULL,
    PRIMARY KEY (sha256, uploaded_by)
);
CREATE INDEX trade_in_documents_sha256_idx ON trade_in_documents (sha256);

-- One application. `id` is the client's application id (a retry with it is a no-op).
-- `home_place` is the applicant's home from the identity token; `city` its city (the
-- settlement city), `county` the county when the home is one. `amount_fen` is the subsidy
-- as the scheme computes it for the current papers. `note` is the reviewer's last word: the
-- rejection's reason, or what is missing. `subsidy_line_id` is set by the approval.
CREATE TABLE trade_in_applications (
    id                     uuid        PRIMARY KEY,
    program_id             bigint      NOT NULL REFERENCES trade_in_schemes (program_id),
    person_id              text        NOT NULL,
    home_place             integer     NOT NULL,
    city                   integer     NOT NULL,
    county                 integer     NULL,
    kind                   text        NOT NULL CHECK (kind IN ('transfer', 'scrap')),
    old_vin                text        NOT NULL CHECK (length(old_vin) = 17),
    old_plate              text        NOT NULL,
    certifier_name         text        NOT NULL,
    certifier_credit_code  text        NOT NULL CHECK (length(certifier_credit_code) = 18),
    certificate_sha256     text        NOT NULL,
    invoice_no             text        NOT NULL,
    new_vin                text        NOT NULL CHECK (length(new_vin) = 17),
    price_fen              bigint      NOT NULL CHECK (price_fen > 0),
    dealer_name            text        NOT NULL,
    dealer_credit_code     text        NOT NULL CHECK (length(dealer_credit_code) = 18),
    invoice_sha256         text        NOT NULL,
    invoice_date           date        NOT NULL,
    amount_fen             bigint      NOT NULL CHECK (amount_fen > 0),
    status                 text        NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'needs_more')),
    note                   text        NULL,
    submissions            integer     NOT NULL DEFAULT 1 CHECK (submissions > 0),
    submission_sha256      text        NOT NULL,
    submitted_at           timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    decided_at             timestamptz NULL,
    subsidy_line_id        uuid        NULL REFERENCES subsidy_lines (id),
    CHECK (old_vin <> new_vin),
    CHECK ((status = 'approved') = (subsidy_line_id IS NOT NULL)),
    FOREIGN KEY (certificate_sha256, person_id) REFERENCES trade_in_documents (sha256, uploaded_by),
    FOREIGN KEY (invoice_sha256, person_id) REFERENCES trade_in_documents (sha256, uploaded_by)
);

-- One subsidy per old car, per new car and per invoice, under any concurrency: unique over
-- the applications that are not rejected (a rejection frees them for a new application).
-- The names are what a refused insert reports; the service maps them to its 409 codes.
CREATE UNIQUE INDEX trade_in_applications_old_vin_key
    ON trade_in_applications (old_vin) WHERE status <> 'rejected';
CREATE UNIQUE INDEX trade_in_applications_new_vin_key
    ON trade_in_applications (new_vin) WHERE status <> 'rejected';
CREATE UNIQUE INDEX trade_in_applications_invoice_no_key
    ON trade_in_applications (invoice_no) WHERE status <> 'rejected';
CREATE INDEX trade_in_applications_review_idx
    ON trade_in_applications (status, home_place, submitted_at);
CREATE INDEX trade_in_applications_person_idx
    ON trade_in_applications (person_id, submitted_at DESC);

-- Every submission and decision, append-only: who (a person id or an administrator's
-- name), in which role and place, what, from which status to which, when, and the note.
CREATE TABLE trade_in_reviews (
    id             bigserial   PRIMARY KEY,
    application_id uuid        NOT NULL REFERENCES trade_in_applications (id),
    action         text        NOT NULL CHECK (action IN ('submit', 'resubmit', 'approve', 'reject', 'request_more')),
    actor          text        NOT NULL,
    role           text        NOT NULL CHECK (role IN ('resident', 'province', 'city')),
    place          integer     NOT NULL,
    from_status    text        NULL,
    to_status      text        NOT NULL,
    note           text        NULL,
    at             timestamptz NOT NULL
);
CREATE INDEX trade_in_reviews_application_idx ON trade_in_reviews (application_id, id);
