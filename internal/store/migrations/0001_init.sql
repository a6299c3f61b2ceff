-- Lethe's own tables: the request read model and the audit trail.
-- Personal data of subjects is not stored here beyond what the workflows need to reach them.

CREATE TABLE requests (
    id            text PRIMARY KEY,
    tenant_id     text        NOT NULL,
    type          text        NOT NULL,
    status        text        NOT NULL,
    regime        text        NOT NULL,
    country       text        NOT NULL DEFAULT '',
    extended      boolean     NOT NULL DEFAULT false,
    received_at   timestamptz NOT NULL,
    due_date      date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX requests_tenant_status_due ON requests (tenant_id, status, due_date);

CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    request_id  text,
    breach_id   text,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at);
CREATE INDEX audit_events_request ON audit_events (request_id) WHERE request_id IS NOT NULL;
