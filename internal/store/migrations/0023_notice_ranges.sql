-- A notice batch is a range of recipients' numbers (first_seq..last_seq), so claiming and settling
-- a batch of 1,000 people writes one batch row and no recipient row; a person's notice status is
-- their batch's. A batch whose outcome is settled as "released" (its run failed or was cancelled
-- before it was sent, or it was found unsent) gives its people back to the next run.
ALTER TABLE breach_notice_batches ADD COLUMN first_seq bigint, ADD COLUMN last_seq bigint;
UPDATE breach_notice_batches b SET first_seq = r.lo, last_seq = r.hi
FROM (SELECT breach_id, run, batch, min(seq) lo, max(seq) hi FROM breach_recipients WHERE run IS NOT NULL GROUP BY 1, 2, 3) r
WHERE r.breach_id = b.breach_id AND r.run = b.run AND r.batch = b.batch;
DELETE FROM breach_notice_batches WHERE first_seq IS NULL;
ALTER TABLE breach_notice_batches ALTER COLUMN first_seq SET NOT NULL, ALTER COLUMN last_seq SET NOT NULL,
    ADD CHECK (first_seq > 0 AND first_seq <= last_seq),
    DROP CONSTRAINT breach_notice_batches_status_check,
    ADD CONSTRAINT breach_notice_batches_status_check CHECK (status IN ('claimed', 'refused', 'sent', 'failed', 'released'));
CREATE INDEX breach_notice_batches_range ON breach_notice_batches (breach_id, first_seq);

DROP INDEX breach_recipients_pending;
DROP INDEX breach_recipients_batch;
ALTER TABLE breach_recipients DROP COLUMN status, DROP COLUMN run, DROP COLUMN batch;

-- Addresses are personal data kept only while needed (see Notices.Forget): once a person's notice
-- is final their email, phone and name are cleared, and address_key, a salted SHA-256 of the
-- breach and the lower-cased address, still keeps them from being listed, and told, twice.
ALTER TABLE breach_recipients ADD COLUMN address_key bytea, ADD COLUMN forgotten_at timestamptz,
    ALTER COLUMN email DROP NOT NULL;
UPDATE breach_recipients SET address_key = sha256(convert_to(breach_id || ':' || lower(email), 'UTF8'));
ALTER TABLE breach_recipients ALTER COLUMN address_key SET NOT NULL;
DROP INDEX breach_recipients_email;
CREATE UNIQUE INDEX breach_recipients_key ON breach_recipients (breach_id, address_key);
ALTER TABLE breach_recipients ADD CHECK (forgotten_at IS NOT NULL OR email IS NOT NULL);
