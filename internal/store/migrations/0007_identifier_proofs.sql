-- Which of the subject's identifiers are proven, and how, e.g.
-- {"email": {"method": "email_code", "actor": "subject", "at": "..."}}. Connector commands carry
-- only proven identifiers: an email code proves the email and nothing else, so a phone or
-- customer number typed next to it waits here for staff to confirm it.
ALTER TABLE request_subjects ADD COLUMN proofs jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Requests verified before proofs were recorded keep working on their email address, the one
-- identifier every verification method of the time proved; anything else needs staff.
UPDATE request_subjects rs
SET proofs = jsonb_build_object('email', jsonb_build_object('method', 'verified before proofs were recorded', 'actor', 'lethe'))
FROM requests r
WHERE r.id = rs.request_id AND rs.email IS NOT NULL AND r.state ? 'identity_verified_at';

-- An erasure forgets every request of the same subject in the tenant, found by its proven
-- identifiers (email case-insensitively).
CREATE INDEX request_subjects_tenant_email ON request_subjects (tenant_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX request_subjects_tenant_phone ON request_subjects (tenant_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX request_subjects_tenant_customer ON request_subjects (tenant_id, customer_id) WHERE customer_id IS NOT NULL;
