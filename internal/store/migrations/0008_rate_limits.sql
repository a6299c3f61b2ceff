-- Rate limits shared by every Lethe process (internal/limits): one row per counted key
-- (action, scope and a tenant id or keyed hash; never an address in clear), kept as GCRA's
-- theoretical arrival time. A row whose tat has passed holds a full budget, the same as no row,
-- so expired rows are deleted without changing any decision.
CREATE TABLE rate_limits (
    key     text PRIMARY KEY,
    tat     timestamptz NOT NULL,
    -- Whether the last take was allowed: RETURNING shows only new values.
    allowed boolean     NOT NULL DEFAULT true
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);
