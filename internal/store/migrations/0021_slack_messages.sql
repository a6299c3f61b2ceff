-- The Slack approval message of each request: the channel and timestamp Slack gave it, so a
-- retried activity updates the message it posted instead of posting a second one.
CREATE TABLE slack_messages (
    request_id text PRIMARY KEY,
    tenant_id  text NOT NULL,
    channel    text NOT NULL,
    ts         text NOT NULL,
    posted_at  timestamptz NOT NULL
);
