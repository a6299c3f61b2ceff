-- Mailgun webhook tokens already accepted: a replayed webhook (same signed token) is refused.
CREATE TABLE mail_webhook_tokens (
    token       text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_webhook_tokens_received ON mail_webhook_tokens (received_at);
