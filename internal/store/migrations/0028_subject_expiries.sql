-- A subject's expiry date (Phorest's "expiry date on client data"): when it passes, the
-- subject is purged through every connector of the tenant that purges. The identifiers are
-- kept only until then, and sealed nowhere else: the purge needs them. After the purge the row
-- keeps the reference and the dates, so the DPO can show it happened.
CREATE TABLE subject_expiries (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    subject_ref text        NOT NULL,
    email       text,
    phone       text,
    customer_id text,
    expires_at  timestamptz NOT NULL,
    set_by      text        NOT NULL,
    set_at      timestamptz NOT NULL,
    purged_at   timestamptz,
    UNIQUE (tenant_id, subject_ref)
);
