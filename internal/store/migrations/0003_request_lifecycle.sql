-- The request lifecycle: the read model's snapshot, Lethe's own copy of the subject's contact
-- details (deleted when an erasure completes), the consent ledger, and idempotent audit events.

ALTER TABLE requests
    ADD COLUMN state         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- started is set once the workflow exists: a resubmission of a started request is a
    -- duplicate even after Temporal has forgotten the workflow id.
    ADD COLUMN started       boolean NOT NULL DEFAULT false,
    ADD COLUMN export_uri    text,
    ADD COLUMN export_sha256 text,
    ADD COLUMN export_bytes  bigint;

-- One row per request while Lethe still needs to reach the subject.
CREATE TABLE request_subjects (
    request_id  text PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
    tenant_id   text NOT NULL,
    email       text,
    phone       text,
    customer_id text,
    language    text NOT NULL DEFAULT 'en',
    -- rectification: the corrected values, field → value
    changes     jsonb
);

-- Activity retries must not write an audit event twice.
ALTER TABLE audit_events ADD COLUMN event_key text;
CREATE UNIQUE INDEX audit_events_event_key ON audit_events (event_key) WHERE event_key IS NOT NULL;

-- Consent decisions, append-only. The subject is kept as a keyed hash so the ledger outlives
-- an erasure without holding the address.
CREATE TABLE consent_ledger (
    id           bigserial PRIMARY KEY,
    event_key    text UNIQUE,
    tenant_id    text        NOT NULL,
    subject_hash text        NOT NULL,
    purpose      text        NOT NULL,
    granted      boolean     NOT NULL,
    source       text        NOT NULL,
    request_id   text,
    changed_at   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_ledger_subject ON consent_ledger (tenant_id, subject_hash, purpose, changed_at);
