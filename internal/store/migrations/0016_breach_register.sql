-- The breach register (GDPR Art. 33(5)): every breach, notifiable or not, with its facts, the
-- versions of its Art. 33(3) content, its risk assessments, one clock per notification
-- obligation and the notification recorded under each. The breach workflow (workflow ID =
-- breach ID) writes it; it holds descriptions and counts staff enter, never the identities of
-- the people affected.

CREATE TABLE breaches (
    id            text PRIMARY KEY,
    tenant_id     text NOT NULL,
    title         text NOT NULL,
    status        text NOT NULL,
    -- when the controller became aware: what the clocks count from (may precede opened_at)
    aware_at      timestamptz NOT NULL,
    determined_at timestamptz,
    material_at   timestamptz,
    risk          text NOT NULL DEFAULT '' CHECK (risk IN ('', 'none', 'risk', 'high')),
    -- establishment, affected residents by jurisdiction, listed, HIPAA, NIS2, small agent
    facts         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- the workflow's snapshot, for the API and the CLI
    state         jsonb NOT NULL DEFAULT '{}'::jsonb,
    opened_by     text NOT NULL,
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX breaches_tenant_aware ON breaches (tenant_id, aware_at DESC, id);

-- Art. 33(3) content as it arrives in phases (33(4)): each update is a new version.
CREATE TABLE breach_contents (
    breach_id          text NOT NULL REFERENCES breaches (id),
    version            integer NOT NULL CHECK (version > 0),
    nature             text NOT NULL DEFAULT '',   -- (a) nature of the breach
    subject_categories text[] NOT NULL DEFAULT '{}', -- (a) categories of data subjects
    subjects_approx    bigint CHECK (subjects_approx >= 0), -- (a) approximate number of subjects
    record_categories  text[] NOT NULL DEFAULT '{}', -- (a) categories of records
    records_approx     bigint CHECK (records_approx >= 0), -- (a) approximate number of records
    contact_point      text NOT NULL DEFAULT '',   -- (b) the DPO or other contact point
    consequences       text NOT NULL DEFAULT '',   -- (c) likely consequences
    measures           text NOT NULL DEFAULT '',   -- (d) measures taken or proposed
    to_follow          text NOT NULL DEFAULT '',   -- 33(4): what is not known yet
    recorded_by        text NOT NULL,
    recorded_at        timestamptz NOT NULL,
    PRIMARY KEY (breach_id, version)
);

-- The DPO's risk assessments, each with its rationale; the latest one counts.
CREATE TABLE breach_assessments (
    breach_id   text NOT NULL REFERENCES breaches (id),
    seq         integer NOT NULL CHECK (seq > 0),
    risk        text NOT NULL CHECK (risk IN ('none', 'risk', 'high')),
    rationale   text NOT NULL CHECK (rationale <> ''),
    assessed_by text NOT NULL,
    assessed_at timestamptz NOT NULL,
    PRIMARY KEY (breach_id, seq)
);

-- One clock per obligation the rules table (internal/breachclock) derives for the breach.
CREATE TABLE breach_clocks (
    breach_id    text NOT NULL REFERENCES breaches (id),
    rule_id      text NOT NULL,
    rule_version integer NOT NULL,
    regime       text NOT NULL,
    notify       text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('deadline', 'open', 'record')),
    starts       text NOT NULL,
    started_at   timestamptz,
    due_at       timestamptz,
    limit_words  text NOT NULL,
    source       text NOT NULL,
    -- waiting, running, escalated, notified, notified_late, documented, withdrawn
    status       text NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (breach_id, rule_id)
);

-- The notification made under a clock; one per clock. A late one carries the reasons for the
-- delay (Art. 33(1)).
CREATE TABLE breach_notifications (
    breach_id    text NOT NULL REFERENCES breaches (id),
    rule_id      text NOT NULL,
    notified_at  timestamptz NOT NULL,
    reference    text NOT NULL DEFAULT '',
    late         boolean NOT NULL,
    late_reasons text NOT NULL DEFAULT '',
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (breach_id, rule_id),
    FOREIGN KEY (breach_id, rule_id) REFERENCES breach_clocks (breach_id, rule_id),
    CHECK (NOT late OR late_reasons <> '')
);
