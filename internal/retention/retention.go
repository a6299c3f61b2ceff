// Package retention is the one service for a tenant's retention: running its rules (the daily
// Temporal Schedule does; lethe retention run does by hand), showing the schedule and the runs
// recorded in the audit trail, and setting a subject's expiry date.
package retention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/worker"
	"github.com/lethe-privacy/lethe/workflows"
)

// Errors the surfaces map to answers.
var (
	// ErrInvalid is input the service refuses (422).
	ErrInvalid = errors.New("invalid")
	// ErrNotConfigured is a tenant without retention settings or a connector that purges.
	ErrNotConfigured = errors.New("not configured")
)

// Service runs retention against Temporal and PostgreSQL.
type Service struct {
	Temporal client.Client
	Store    *store.Store
	Cfg      config.Config
}

// Start starts a retention run of the tenant now, beside the daily one.
func (s *Service) Start(ctx context.Context, tenant, actor string, dryRun bool, at time.Time) (client.WorkflowRun, error) {
	t, ok := s.Cfg.Tenant(tenant)
	if !ok || t.Retention == nil {
		return nil, fmt.Errorf("%w: tenant %s has no retention settings (tenants[].retention)", ErrNotConfigured, tenant)
	}
	kind := "run"
	if dryRun {
		kind = "dry-run"
	}
	id := fmt.Sprintf("%s-%s-%s", worker.RetentionSchedule(tenant), kind, strings.Replace(at.UTC().Format("20060102T150405.000Z"), ".", "", 1))
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.Cfg.Temporal.TaskQueue},
		workflows.RetentionWorkflow, workflows.RetentionInput{TenantID: tenant, DryRun: dryRun, Actor: actor})
	if err != nil {
		return nil, fmt.Errorf("starting the retention run of tenant %s: %w", tenant, err)
	}
	return run, nil
}

// Progress asks a running retention run where it stands; nil before it has read its plan.
func (s *Service) Progress(ctx context.Context, workflowID string) (*workflows.RetentionProgress, error) {
	v, err := s.Temporal.QueryWorkflow(ctx, workflowID, "", workflows.RetentionProgressQuery)
	if err != nil {
		return nil, fmt.Errorf("asking retention run %s for its progress: %w", workflowID, err)
	}
	var p *workflows.RetentionProgress
	if err := v.Get(&p); err != nil {
		return nil, fmt.Errorf("reading the progress of retention run %s: %w", workflowID, err)
	}
	return p, nil
}

// Status is a tenant's retention schedule and its latest runs.
type Status struct {
	Schedule string      `json:"schedule"`
	Hour     int         `json:"hour_utc"`
	Next     []time.Time `json:"next_runs"`
	Paused   bool        `json:"paused"`
	Rules    []config.RetentionRule
	// Runs are the latest runs recorded in the audit trail, newest first.
	Runs []store.Event `json:"runs"`
	// PendingExpiries counts subjects whose expiry date has not been purged yet.
	PendingExpiries int64 `json:"pending_expiries"`
}

// Status describes the tenant's schedule and its last runs (real and dry).
func (s *Service) Status(ctx context.Context, tenant string, runs int) (Status, error) {
	t, ok := s.Cfg.Tenant(tenant)
	if !ok || t.Retention == nil {
		return Status{}, fmt.Errorf("%w: tenant %s has no retention settings (tenants[].retention)", ErrNotConfigured, tenant)
	}
	st := Status{Schedule: worker.RetentionSchedule(tenant), Hour: t.Retention.RunHour(), Rules: t.Retention.Rules}
	d, err := s.Temporal.ScheduleClient().GetHandle(ctx, st.Schedule).Describe(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("reading the Temporal schedule %s (a worker creates it at start): %w", st.Schedule, err)
	}
	st.Next, st.Paused = d.Info.NextActionTimes, d.Schedule.State.Paused
	for _, action := range []string{activities.ActionRetentionRun, activities.ActionRetentionDryRun} {
		evs, err := s.Store.Audit().List(ctx, store.AuditFilter{TenantID: tenant, Action: action, Limit: runs})
		if err != nil {
			return Status{}, err
		}
		st.Runs = append(st.Runs, evs...)
	}
	slices.SortFunc(st.Runs, func(a, b store.Event) int { return cmp.Compare(b.ID, a.ID) })
	if len(st.Runs) > runs {
		st.Runs = st.Runs[:runs]
	}
	if st.PendingExpiries, err = s.Store.Expiries().Pending(ctx, tenant); err != nil {
		return Status{}, err
	}
	return st, nil
}

// Expiry is a subject's expiry date as the API shows it: the reference, never the identifiers.
type Expiry struct {
	ID         string     `json:"id"`
	SubjectRef string     `json:"subject_ref"`
	ExpiresAt  time.Time  `json:"expires_at"`
	SetBy      string     `json:"set_by"`
	SetAt      time.Time  `json:"set_at"`
	PurgedAt   *time.Time `json:"purged_at,omitempty"`
}

// SetExpiry sets (or moves) the date on which the subject is purged through every connector of
// the tenant that purges, and starts or tells that subject's expiry workflow. A date already
// past purges at once.
func (s *Service) SetExpiry(ctx context.Context, tenant, actor string, subj connectors.Subject, at, now time.Time) (Expiry, error) {
	subj = connectors.Subject{Email: strings.TrimSpace(subj.Email), Phone: strings.TrimSpace(subj.Phone), CustomerID: strings.TrimSpace(subj.CustomerID)}
	if subj.IsZero() {
		return Expiry{}, fmt.Errorf("%w: name the subject by email, phone or customer_id", ErrInvalid)
	}
	if err := domain.CheckIdentifiers(subj); err != nil {
		return Expiry{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(config.Purgers(s.Cfg.Connectors, tenant)) == 0 {
		return Expiry{}, fmt.Errorf("%w: tenant %s has no connector that purges, so an expiry date would purge nothing", ErrNotConfigured, tenant)
	}
	ref := crypto.SubjectHash(s.Cfg.Secrets.SigningKey.Value(), tenant, subj.Email, subj.Phone, subj.CustomerID)
	e := store.Expiry{ID: "exp-" + ref[:32], TenantID: tenant, SubjectRef: ref,
		Identifiers: store.Identifiers{Email: subj.Email, Phone: subj.Phone, CustomerID: subj.CustomerID},
		ExpiresAt:   at.UTC().Truncate(time.Microsecond), SetBy: actor, SetAt: now.UTC().Truncate(time.Microsecond)}
	err := pgx.BeginFunc(ctx, s.Store.Pool, func(tx pgx.Tx) error {
		var err error
		if e, err = s.Store.Expiries().Set(ctx, tx, e); err != nil {
			return err
		}
		_, err = s.Store.Audit().Append(ctx, tx, store.Event{Key: e.ID + ":set:" + e.SetAt.Format(time.RFC3339Nano), TenantID: tenant,
			At: e.SetAt, Actor: actor, Action: activities.ActionExpirySet, SubjectRef: ref,
			Detail: map[string]any{"expiry_id": e.ID, "expires_at": e.ExpiresAt}})
		return err
	})
	if err != nil {
		return Expiry{}, err
	}
	_, err = s.Temporal.SignalWithStartWorkflow(ctx, workflows.ExpiryWorkflowID(e.ID), workflows.ExpiryChangedSignal, nil,
		client.StartWorkflowOptions{ID: workflows.ExpiryWorkflowID(e.ID), TaskQueue: s.Cfg.Temporal.TaskQueue},
		workflows.SubjectExpiryWorkflow, workflows.SubjectExpiryInput{ExpiryID: e.ID})
	if err != nil {
		return Expiry{}, fmt.Errorf("starting the expiry workflow of %s: %w", e.ID, err)
	}
	return Expiry{ID: e.ID, SubjectRef: ref, ExpiresAt: e.ExpiresAt, SetBy: e.SetBy, SetAt: e.SetAt, PurgedAt: e.PurgedAt}, nil
}
