package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/store"
)

// RetentionStep is one of a tenant's retention rules: a rule of one connector instance, run
// with the tenant's period.
type RetentionStep struct {
	Connector string
	Rule      string
	OlderThan time.Duration
}

// RetentionPlan is what a tenant's retention run does: its rules, then the closed requests'
// exports older than ExportsAfter.
type RetentionPlan struct {
	Steps []RetentionStep
	// Batches bounds each purge command.
	Batches      int
	ExportsAfter time.Duration
}

// RetentionPlan reads the tenant's retention rules from the configuration.
func (a *Activities) RetentionPlan(_ context.Context, tenant string) (RetentionPlan, error) {
	t, ok := a.Tenants[tenant]
	if !ok || t.Retention == nil {
		return RetentionPlan{}, permanent("tenant "+tenant+" has no retention settings (tenants[].retention)", nil)
	}
	plan := RetentionPlan{Batches: t.Retention.Batches(), ExportsAfter: a.ExportExpiry}
	for _, r := range t.Retention.Rules {
		plan.Steps = append(plan.Steps, RetentionStep{Connector: r.Connector, Rule: r.Name, OlderThan: time.Duration(r.After)})
	}
	return plan, nil
}

// ExportSweep asks ExpiredExports for the tenant's closed requests whose export is older than
// Before (a page of Limit, or in a dry run their count).
type ExportSweep struct {
	TenantID string
	Before   time.Time
	Limit    int
	DryRun   bool
}

// ExportSweepResult is a page of requests whose export expired, or their count.
type ExportSweepResult struct {
	Requests []string
	Count    int64
}

// ExpiredExports finds closed requests whose export outlived its expiry: ExportExpiryWorkflow
// deletes each completed request's export on time, so these are the ones it never ran for (a
// denied or canceled request with connector files, an expiry that failed).
func (a *Activities) ExpiredExports(ctx context.Context, s ExportSweep) (ExportSweepResult, error) {
	q := a.Store.Requests()
	if s.DryRun {
		n, err := q.CountExpiredExports(ctx, s.TenantID, domain.TerminalStatuses(), s.Before)
		return ExportSweepResult{Count: n}, err
	}
	ids, err := q.ExpiredExports(ctx, s.TenantID, domain.TerminalStatuses(), s.Before, s.Limit)
	return ExportSweepResult{Requests: ids, Count: int64(len(ids))}, err
}

// RuleCount is what one retention rule did (or, in a dry run, would do) in a run.
type RuleCount struct {
	Connector string `json:"connector"`
	Rule      string `json:"rule"`
	// Rows are the records the rule purged: rows deleted or anonymised, subjects erased.
	Rows int64 `json:"rows"`
	// Blocked are subjects a blocking rule kept (a booking to come, a balance owed).
	Blocked  int64  `json:"blocked,omitempty"`
	Commands int    `json:"commands"`
	Error    string `json:"error,omitempty"`
}

// RetentionReport is one retention run of a tenant, as the audit trail records it.
type RetentionReport struct {
	RunID     string      `json:"run_id"`
	TenantID  string      `json:"tenant_id"`
	Actor     string      `json:"actor"`
	DryRun    bool        `json:"dry_run"`
	StartedAt time.Time   `json:"started_at"`
	EndedAt   time.Time   `json:"ended_at"`
	Rules     []RuleCount `json:"rules"`
	// Exports are closed requests whose expired export was deleted.
	Exports int64 `json:"exports"`
}

// Retention audit actions.
const (
	ActionRetentionRun    = "retention.run"
	ActionRetentionDryRun = "retention.dry_run"
)

// RecordRetentionRun appends the run, with its counts, to the tenant's audit trail.
func (a *Activities) RecordRetentionRun(ctx context.Context, r RetentionReport) error {
	action := ActionRetentionRun
	if r.DryRun {
		action = ActionRetentionDryRun
	}
	rules := make([]map[string]any, len(r.Rules))
	for i, c := range r.Rules {
		rules[i] = map[string]any{"connector": c.Connector, "rule": c.Rule, "rows": c.Rows, "blocked": c.Blocked, "commands": c.Commands}
		if c.Error != "" {
			rules[i]["error"] = c.Error
		}
	}
	_, err := a.Store.Audit().Append(ctx, a.Store.Pool, store.Event{Key: r.RunID + ":" + action, TenantID: r.TenantID, At: r.EndedAt,
		Actor: r.Actor, Action: action, Detail: map[string]any{
			"run_id": r.RunID, "started_at": r.StartedAt, "rules": rules, "exports": r.Exports,
		}})
	return err
}

// ExpiryState is what the expiry workflow needs of a subject's expiry: never the identifiers.
type ExpiryState struct {
	TenantID  string
	ExpiresAt time.Time
	Purged    bool
	// Connectors are the tenant's instances that purge.
	Connectors []string
}

// LoadExpiry reads expiry id's date.
func (a *Activities) LoadExpiry(ctx context.Context, id string) (ExpiryState, error) {
	e, err := a.Store.Expiries().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ExpiryState{}, permanent("expiry "+id+" is not recorded", nil)
	}
	if err != nil {
		return ExpiryState{}, err
	}
	return ExpiryState{TenantID: e.TenantID, ExpiresAt: e.ExpiresAt, Purged: e.PurgedAt != nil, Connectors: config.Purgers(a.Connectors, e.TenantID)}, nil
}

// expirySubject reads the identifiers of expiry id's subject, for its purge command.
func (a *Activities) expirySubject(ctx context.Context, id string) (connectors.Subject, error) {
	e, err := a.Store.Expiries().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return connectors.Subject{}, permanent("expiry "+id+" is not recorded", nil)
	}
	if err != nil {
		return connectors.Subject{}, err
	}
	s := connectors.Subject{Email: e.Email, Phone: e.Phone, CustomerID: e.CustomerID}
	if s.IsZero() {
		return s, permanent("the subject of expiry "+id+" was purged already", nil)
	}
	return s, nil
}

// ExpiryPurge reports the purge of a subject whose expiry date passed: rows by connector, or
// the errors that kept a connector from it.
type ExpiryPurge struct {
	ExpiryID  string
	ExpiresAt time.Time
	Rows      map[string]int64
	Errors    map[string]string
}

// Expiry audit actions.
const (
	ActionExpiryPurged       = "subject.expiry_purged"
	ActionExpiryPurgeFailed  = "subject.expiry_purge_failed"
	ActionExpirySet          = "subject.expiry_set"
	expiryEventKeyDateFormat = "20060102T150405Z"
)

// RecordExpiryPurge records the purge in the audit trail by the subject's reference. When every
// connector purged, the expiry is marked purged and its identifiers are forgotten, in the same
// transaction.
func (a *Activities) RecordExpiryPurge(ctx context.Context, p ExpiryPurge) error {
	e, err := a.Store.Expiries().Get(ctx, p.ExpiryID)
	if err != nil {
		return fmt.Errorf("recording the purge of expiry %s: %w", p.ExpiryID, err)
	}
	action, key := ActionExpiryPurged, p.ExpiryID+":purged:"+p.ExpiresAt.UTC().Format(expiryEventKeyDateFormat)
	detail := map[string]any{"expiry_id": p.ExpiryID, "expires_at": p.ExpiresAt, "rows": p.Rows}
	if len(p.Errors) > 0 {
		action, key = ActionExpiryPurgeFailed, key+":failed:"+a.now().UTC().Format(expiryEventKeyDateFormat)
		detail["errors"] = p.Errors
	}
	return pgx.BeginFunc(ctx, a.Store.Pool, func(tx pgx.Tx) error {
		if len(p.Errors) == 0 {
			if _, err := a.Store.Expiries().Purged(ctx, tx, p.ExpiryID, p.ExpiresAt, a.now()); err != nil {
				return err
			}
		}
		_, err := a.Store.Audit().Append(ctx, tx, store.Event{Key: key, TenantID: e.TenantID, At: a.now(), Actor: "lethe",
			Action: action, SubjectRef: e.SubjectRef, Detail: detail})
		return err
	})
}
