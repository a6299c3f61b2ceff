-- Every authority report generated for a breach: the document (HTML or PDF) is kept in the
-- export store, and each version is recorded here with what it was built from, so an earlier
-- report can still be shown and downloaded after the content has moved on.
CREATE TABLE breach_reports (
    breach_id       text NOT NULL REFERENCES breaches (id),
    version         integer NOT NULL CHECK (version > 0),
    format          text NOT NULL CHECK (format IN ('html', 'pdf')),
    -- the Art. 33(3) content version it shows (0: none recorded yet)
    content_version integer NOT NULL CHECK (content_version >= 0),
    -- the register as of this time (breaches.updated_at): the same state renders the same bytes
    register_at     timestamptz NOT NULL,
    uri             text NOT NULL,
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes           bigint NOT NULL CHECK (bytes > 0),
    generated_by    text NOT NULL,
    generated_at    timestamptz NOT NULL,
    PRIMARY KEY (breach_id, version)
);
CREATE INDEX breach_reports_current ON breach_reports (breach_id, format, register_at DESC);
