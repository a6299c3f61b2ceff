-- Slack posts of reminders, escalations, breach clock alarms and digests, one row per post (a
-- channel post and the DPO's direct message are two): a retried activity finds the row and
-- does not post again.
CREATE TABLE slack_alerts (
    key       text PRIMARY KEY,
    tenant_id text NOT NULL,
    channel   text NOT NULL,
    ts        text NOT NULL,
    posted_at timestamptz NOT NULL
);
