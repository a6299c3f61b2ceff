-- Art. 34 by text: a person found or uploaded with a phone and no email, for a tenant that sends
-- texts (tenants[].sms), is a recipient of channel 'sms' (email NULL, address_key from the
-- E.164 phone). Twilio sends one text a call, so each such person has a row of their own in
-- breach_notice_texts, claimed before Twilio is called and settled after: see
-- activities/texts.go. Email batches take channel 'email' people only.
ALTER TABLE breach_recipients ADD COLUMN channel text NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'sms')),
    DROP CONSTRAINT breach_recipients_check,
    ADD CONSTRAINT breach_recipients_address_check CHECK (forgotten_at IS NOT NULL OR email IS NOT NULL OR (channel = 'sms' AND phone <> ''));
CREATE INDEX breach_recipients_texts ON breach_recipients (breach_id, seq) WHERE channel = 'sms';

CREATE TABLE breach_notice_texts (
    breach_id   text NOT NULL,
    seq         bigint NOT NULL,
    run         integer NOT NULL CHECK (run > 0),   -- the notice run and text batch that claimed it last
    batch       integer NOT NULL CHECK (batch > 0),
    -- claimed: about to be sent, or sent with Twilio's answer not recorded (in doubt);
    -- refused: Twilio answered 429, nothing was sent; sent (with Twilio's SID); failed for good
    -- (error holds Twilio's code); released: not sent, the person goes to the next claim
    status      text NOT NULL CHECK (status IN ('claimed', 'refused', 'sent', 'failed', 'released')),
    sid         text NOT NULL DEFAULT '',
    error       text NOT NULL DEFAULT '',
    claimed_at  timestamptz NOT NULL,
    done_at     timestamptz,
    PRIMARY KEY (breach_id, seq),
    FOREIGN KEY (breach_id, seq) REFERENCES breach_recipients (breach_id, seq)
);
CREATE INDEX breach_notice_texts_batch ON breach_notice_texts (breach_id, run, batch);
CREATE INDEX breach_notice_texts_open ON breach_notice_texts (breach_id, run) WHERE status IN ('claimed', 'refused', 'released');

-- The body a run's texts go out with, written by its first claim: the same for every attempt
-- and every person of the run, so an unanswered send can be found at Twilio by its body even
-- after the breach's content or the tenant's name changed.
CREATE TABLE breach_notice_text_runs (
    breach_id  text NOT NULL REFERENCES breaches (id),
    run        integer NOT NULL CHECK (run > 0),
    body       text NOT NULL,
    PRIMARY KEY (breach_id, run)
);
