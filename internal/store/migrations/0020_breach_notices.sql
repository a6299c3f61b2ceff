-- Art. 34: the people a high-risk breach is notified to, and the batches their notice went out
-- in. Recipients live here and never in Temporal's history (the notice workflow carries batch
-- numbers and counts only). A batch is claimed here before Mailgun is called and its outcome
-- recorded after, so a batch is sent once: see activities/notices.go.
CREATE TABLE breach_recipients (
    breach_id    text NOT NULL REFERENCES breaches (id),
    seq          bigint NOT NULL CHECK (seq > 0),  -- the order of sending
    email        text NOT NULL CHECK (email <> ''),
    phone        text NOT NULL DEFAULT '',
    name         text NOT NULL DEFAULT '',
    source       text NOT NULL,                    -- the connector instance, or "csv"
    run          integer,                          -- the notice run and batch that hold it, once claimed
    batch        integer,
    -- pending, sending (claimed by a batch), sent (Mailgun accepted), failed (Mailgun refused)
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    -- the last delivery event of its message from Mailgun's webhook: delivered or failed
    delivery     text NOT NULL DEFAULT '' CHECK (delivery IN ('', 'delivered', 'failed')),
    delivery_at  timestamptz,
    PRIMARY KEY (breach_id, seq)
);
-- One message per person and breach, whichever connector or upload found them.
CREATE UNIQUE INDEX breach_recipients_email ON breach_recipients (breach_id, lower(email));
CREATE INDEX breach_recipients_pending ON breach_recipients (breach_id, seq) WHERE status = 'pending';
CREATE INDEX breach_recipients_batch ON breach_recipients (breach_id, run, batch);

CREATE TABLE breach_notice_batches (
    breach_id   text NOT NULL REFERENCES breaches (id),
    run         integer NOT NULL CHECK (run > 0),     -- the breach's notice run (its child workflow)
    batch       integer NOT NULL CHECK (batch > 0),
    recipients  integer NOT NULL,
    -- claimed: about to be sent, or sent with the outcome not yet recorded (in doubt);
    -- refused: Mailgun answered with an error, nothing was queued; sent; failed (for good)
    status      text NOT NULL CHECK (status IN ('claimed', 'refused', 'sent', 'failed')),
    message_id  text NOT NULL DEFAULT '',
    error       text NOT NULL DEFAULT '',
    claimed_at  timestamptz NOT NULL,
    done_at     timestamptz,
    PRIMARY KEY (breach_id, run, batch)
);
