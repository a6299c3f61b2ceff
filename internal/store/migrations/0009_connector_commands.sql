-- Every connector command Lethe published, keyed by the SHA-256 of the task token it carries,
-- so the bridge accepts a result only for the request, connector and action that token was
-- issued for, and only export files under that command's own prefix.
CREATE TABLE connector_commands (
    id            text        PRIMARY KEY,
    token_sha256  bytea       NOT NULL UNIQUE,
    request_id    text        NOT NULL,
    tenant_id     text        NOT NULL,
    connector     text        NOT NULL,
    action        text        NOT NULL,
    export_prefix text        NOT NULL DEFAULT '',
    issued_at     timestamptz NOT NULL
);
CREATE INDEX connector_commands_request ON connector_commands (request_id);
