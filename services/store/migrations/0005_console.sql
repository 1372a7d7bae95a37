-- The finance console (issue 11): people's sessions, the audit trail, recorded checks.

-- A signed-in officer. The cookie holds a random token; only its SHA-256 is stored. The
-- officer is copied from the credential at sign-in (name, role, place), so a handler never
-- needs to know how the person signed in (an API key, the dev identity provider, or the
-- province's single sign-on). A session ends at `expires_at` (absolute), after `idle_secs`
-- without a request, or when `ended_at` is set (sign-out).
CREATE TABLE console_sessions (
    token_sha256 text        PRIMARY KEY,
    csrf_token   text        NOT NULL,
    officer      text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('province', 'city')),
    place        integer     NOT NULL,
    method       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz NULL
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

-- Every action taken through the console: who, with which role and place, what, on what,
-- how it ended, when. Append-only.
CREATE TABLE console_audit (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    role    text        NULL,
    place   integer     NULL,
    action  text        NOT NULL,
    target  text        NULL,
    outcome text        NOT NULL,
    detail  jsonb       NULL
);
CREATE INDEX console_audit_at_idx ON console_audit (at DESC);

-- Results of `check` (Redis against PostgreSQL), whoever ran it: the cron's command line or
-- a province officer in the console. The console shows the last one.
CREATE TABLE check_results (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    clean   boolean     NOT NULL,
    report  jsonb       NOT NULL
);
CREATE INDEX check_results_at_idx ON check_results (at DESC);
