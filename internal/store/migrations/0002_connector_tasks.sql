-- Connector runners remember every task they completed, keyed by connector and idempotency key,
-- so a command redelivered after a crash gets the stored result instead of a second run.
-- Only successes are kept: a failed task may succeed on a later attempt with the same key.
CREATE TABLE connector_tasks (
    connector       text        NOT NULL,
    idempotency_key text        NOT NULL,
    request_id      text        NOT NULL,
    action          text        NOT NULL,
    output          jsonb       NOT NULL,
    completed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector, idempotency_key)
);
