-- Outgoing webhook deliveries: one row per event and subscription, written when the event is
-- read from lethe.events and kept until delivered or dead-lettered, so a retry survives a
-- restart. The body is the event as published (references, never personal data).
CREATE TABLE webhook_deliveries (
    id               text        PRIMARY KEY,
    tenant_id        text        NOT NULL,
    subscription     text        NOT NULL,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    request_id       text,
    breach_id        text,
    body             bytea       NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL,
    finished_at      timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, created_at);

-- Commands of webhook connector instances whose endpoint answered 202 and reports later
-- through its callback URL. Kept by connector and idempotency key (the latest attempt's
-- command, sealed as published), until the callback completes it.
CREATE TABLE connector_held_commands (
    connector       text        NOT NULL,
    idempotency_key text        NOT NULL,
    command         jsonb       NOT NULL,
    held_at         timestamptz NOT NULL,
    PRIMARY KEY (connector, idempotency_key)
);
