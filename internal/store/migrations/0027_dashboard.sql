-- The DPO's dashboard: the channel a request came in on (a filter), and the indexes that keep
-- its deadline list, the API's due_before listing and the activity stream fast at scale
-- (README, "Performance").

ALTER TABLE requests ADD COLUMN channel text NOT NULL DEFAULT '';

-- Every request of a tenant soonest due first (GET /v1/requests?due_before=).
CREATE INDEX requests_tenant_due ON requests (tenant_id, due_date, received_at);
-- The open ones only: the dashboard's deadline list. The predicate is domain.TerminalStatuses;
-- store.Requests.List writes the same list, so the planner can prove the index applies.
CREATE INDEX requests_open_due ON requests (tenant_id, due_date, received_at)
    WHERE status NOT IN ('completed', 'denied', 'canceled');

-- The activity stream: a tenant's events newest first, alone or by actor or action.
CREATE INDEX audit_events_tenant_id ON audit_events (tenant_id, id);
CREATE INDEX audit_events_tenant_actor ON audit_events (tenant_id, actor, id);
CREATE INDEX audit_events_tenant_action ON audit_events (tenant_id, action, id);
