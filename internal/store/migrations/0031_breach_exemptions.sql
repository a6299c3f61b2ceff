-- Art. 34(3): the people affected need not be told individually when the data was encrypted,
-- the risk was neutralised, or telling each would be disproportionate (then a public
-- communication, named in reference). The register keeps the ground and why it holds.
ALTER TABLE breach_notifications
    ADD COLUMN exemption text NOT NULL DEFAULT '',
    ADD COLUMN exemption_rationale text NOT NULL DEFAULT '',
    ADD CONSTRAINT breach_notifications_exemption_check
        CHECK (exemption IN ('', 'encrypted', 'neutralised', 'disproportionate')
               AND (exemption = '' OR exemption_rationale <> '')
               AND (exemption <> 'disproportionate' OR reference <> ''));
