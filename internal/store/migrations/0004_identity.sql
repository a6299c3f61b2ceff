-- Identity verification: one-time email codes and the identity assertions already accepted.

-- At most one live code per request. Only an HMAC of the code is kept, so a database reader
-- cannot verify anyone. The issue counters survive a new code, which is how a request is
-- limited to a few codes an hour.
CREATE TABLE verification_codes (
    request_id        text PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
    code_hash         bytea       NOT NULL,
    issued_at         timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    attempts          integer     NOT NULL DEFAULT 0,
    issues_in_window  integer     NOT NULL DEFAULT 1,
    window_started_at timestamptz NOT NULL,
    used_at           timestamptz
);

-- The IDs (jti) of host-app identity assertions already used, per audience, kept until the
-- assertion expires, so a captured assertion cannot be presented twice.
CREATE TABLE identity_assertions_seen (
    audience   text        NOT NULL,
    jti        text        NOT NULL,
    expires_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL,
    PRIMARY KEY (audience, jti)
);
CREATE INDEX identity_assertions_seen_expiry ON identity_assertions_seen (expires_at);
