-- The consent ledger read back: it stays append-only (a change is a new row, never an edit),
-- and every row any writer appends is queued in consent_outbox, from which the bridge publishes
-- the subject's new state as lethe.consent.state and then removes the queue entry.
CREATE FUNCTION lethe_consent_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_ledger is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER consent_ledger_append_only BEFORE UPDATE OR DELETE ON consent_ledger
    FOR EACH ROW EXECUTE FUNCTION lethe_consent_refuse();
CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON consent_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION lethe_consent_refuse();

CREATE TABLE consent_outbox (
    ledger_id bigint PRIMARY KEY REFERENCES consent_ledger (id)
);
CREATE FUNCTION lethe_consent_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO consent_outbox (ledger_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER consent_ledger_enqueue AFTER INSERT ON consent_ledger
    FOR EACH ROW EXECUTE FUNCTION lethe_consent_enqueue();

-- Rows already in the ledger have been recorded without an event; they are published once.
INSERT INTO consent_outbox (ledger_id) SELECT id FROM consent_ledger;
