-- The audit trail is hash-chained per tenant and append-only.
--
-- Each event has seq (1, 2, ... within its tenant), prev_hash (the hash of the tenant's event
-- seq-1; 64 zeros for seq 1, the genesis) and hash = lethe_audit_hash(...) over its fields. The
-- chain is written by the BEFORE INSERT trigger below, whoever inserts, under the lock of the
-- tenant's row in audit_chain_heads, so concurrent appenders of one tenant queue and the chain
-- never forks. Events recorded before this migration are chained here in id order.

CREATE TABLE audit_chain_heads (
    tenant_id text PRIMARY KEY,
    seq       bigint NOT NULL DEFAULT 0,
    hash      text   NOT NULL DEFAULT repeat('0', 64)
);

ALTER TABLE audit_events
    ADD COLUMN seq bigint,
    ADD COLUMN prev_hash text,
    ADD COLUMN hash text,
    -- A keyed hash of the subject (crypto.SubjectHash), where the event concerns one: a
    -- reference that finds a subject's events without holding their identifiers.
    ADD COLUMN subject_ref text;

-- The canonical encoding, defined once: each field as "<octet length>:<value>" (NULL as "~"),
-- in this order, after the version tag; the hash is the hex SHA-256 of its UTF-8 bytes. Times
-- are UTC with microseconds, detail is PostgreSQL's text form of the jsonb value.
CREATE FUNCTION lethe_audit_hash(prev_hash text, seq bigint, tenant_id text, event_key text,
    occurred_at timestamptz, actor text, action text, request_id text, breach_id text,
    subject_ref text, detail jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(
        'lethe-audit-v1' || string_agg(COALESCE(octet_length(f)::text || ':' || f, '~'), '' ORDER BY n),
        'UTF8')), 'hex')
    FROM unnest(ARRAY[prev_hash, seq::text, tenant_id, event_key,
        to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        actor, action, request_id, breach_id, subject_ref, detail::text]) WITH ORDINALITY AS u(f, n)
$$;

DO $$
DECLARE
    r record;
    cur_tenant text := NULL;
    cur_seq bigint;
    cur_hash text;
BEGIN
    FOR r IN SELECT * FROM audit_events ORDER BY tenant_id, id LOOP
        IF cur_tenant IS DISTINCT FROM r.tenant_id THEN
            IF cur_tenant IS NOT NULL THEN
                INSERT INTO audit_chain_heads VALUES (cur_tenant, cur_seq, cur_hash);
            END IF;
            cur_tenant := r.tenant_id;
            cur_seq := 0;
            cur_hash := repeat('0', 64);
        END IF;
        UPDATE audit_events SET seq = cur_seq + 1, prev_hash = cur_hash,
            hash = lethe_audit_hash(cur_hash, cur_seq + 1, r.tenant_id, r.event_key, r.occurred_at,
                r.actor, r.action, r.request_id, r.breach_id, r.subject_ref, r.detail)
        WHERE id = r.id RETURNING seq, hash INTO cur_seq, cur_hash;
    END LOOP;
    IF cur_tenant IS NOT NULL THEN
        INSERT INTO audit_chain_heads VALUES (cur_tenant, cur_seq, cur_hash);
    END IF;
END $$;

ALTER TABLE audit_events
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT audit_events_chain UNIQUE (tenant_id, seq);
CREATE INDEX audit_events_subject ON audit_events (tenant_id, subject_ref) WHERE subject_ref IS NOT NULL;

-- SECURITY DEFINER: the application role appends events without any right to write the
-- chain heads itself (README, "The audit trail").
CREATE FUNCTION lethe_audit_chain() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_catalog AS $$
DECLARE
    head audit_chain_heads%ROWTYPE;
BEGIN
    INSERT INTO audit_chain_heads (tenant_id) VALUES (NEW.tenant_id) ON CONFLICT DO NOTHING;
    SELECT * INTO head FROM audit_chain_heads WHERE tenant_id = NEW.tenant_id FOR UPDATE;
    -- A retried writer: the event is already in the chain. Checked under the lock, so the
    -- chain head never moves for an event the unique key then turns away.
    IF NEW.event_key IS NOT NULL AND EXISTS (SELECT 1 FROM audit_events WHERE event_key = NEW.event_key) THEN
        RETURN NULL;
    END IF;
    -- Numbered under the lock, so id order is chain order within a tenant.
    NEW.id := nextval(pg_get_serial_sequence('audit_events', 'id'));
    NEW.seq := head.seq + 1;
    NEW.prev_hash := head.hash;
    NEW.occurred_at := date_trunc('microseconds', NEW.occurred_at);
    NEW.hash := lethe_audit_hash(NEW.prev_hash, NEW.seq, NEW.tenant_id, NEW.event_key, NEW.occurred_at,
        NEW.actor, NEW.action, NEW.request_id, NEW.breach_id, NEW.subject_ref, NEW.detail);
    UPDATE audit_chain_heads SET seq = NEW.seq, hash = NEW.hash WHERE tenant_id = NEW.tenant_id;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION lethe_audit_chain();

-- Append-only: the trail holds references, never personal data, so nothing ever needs
-- changing or deleting. (Only session_replication_role = replica, a superuser's switch, skips it.)
CREATE FUNCTION lethe_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION lethe_audit_refuse();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION lethe_audit_refuse();
CREATE TRIGGER audit_chain_heads_no_delete BEFORE DELETE OR TRUNCATE ON audit_chain_heads
    FOR EACH STATEMENT EXECUTE FUNCTION lethe_audit_refuse();
