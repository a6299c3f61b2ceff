// Package breaches is the one place where personal-data breaches are opened, updated and read:
// the CLI and the HTTP API go through it. Each breach is a BreachWorkflow (workflow ID = breach
// ID) that keeps the breach register.
package breaches

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// Errors callers map to user-facing answers (HTTP 4xx, CLI messages).
var (
	ErrInvalid   = errors.New("invalid breach")
	ErrNotFound  = errors.New("breach not found")
	ErrDuplicate = errors.New("breach already open")
	ErrRejected  = errors.New("entry rejected")
)

// Service opens and drives breaches. It is safe for concurrent use.
type Service struct {
	Temporal client.Client
	Store    *store.Store
	Cfg      config.Config
	// ExportBase is the export store URI prefix where connectors write what their finds found.
	ExportBase string
	Now        func() time.Time
}

// Opening is a new breach as staff report it.
type Opening struct {
	// BreachID is the caller's id; empty means Lethe assigns one. Opening the same id twice is
	// one breach.
	BreachID string
	TenantID string
	Title    string
	// AwareAt is when the tenant became aware of the breach, which may be before now; the
	// clocks count from it.
	AwareAt      time.Time
	DeterminedAt *time.Time
	Affected     []breachclock.Residents
	Content      *store.Art33
	OpenedBy     string
}

var (
	breachID     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	jurisdiction = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)
)

// maxSkew is how far in the future a time of awareness may lie before it is refused: clocks
// of callers and servers differ by a little.
const maxSkew = 5 * time.Minute

// Validate checks an opening; errors wrap ErrInvalid and name the field.
func (s *Service) Validate(o Opening) error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(f, a...)) }
	if _, ok := s.Cfg.Tenant(o.TenantID); !ok {
		return bad("unknown tenant %q", o.TenantID)
	}
	if o.BreachID != "" && !breachID.MatchString(o.BreachID) {
		return bad("id must be 1 to 64 letters, digits, '-' or '_'")
	}
	if t := strings.TrimSpace(o.Title); t == "" || len(t) > 200 {
		return bad("title is required, at most 200 characters")
	}
	if strings.TrimSpace(o.OpenedBy) == "" {
		return bad("who opens the breach is required")
	}
	if o.AwareAt.IsZero() {
		return bad("aware_at (when the breach became known) is required")
	}
	if o.AwareAt.After(s.now().Add(maxSkew)) {
		return bad("aware_at lies in the future")
	}
	if o.DeterminedAt != nil && (o.DeterminedAt.Before(o.AwareAt) || o.DeterminedAt.After(s.now().Add(maxSkew))) {
		return bad("determined_at must lie between aware_at and now")
	}
	for i, r := range o.Affected {
		if !jurisdiction.MatchString(r.Jurisdiction) {
			return bad("affected[%d].jurisdiction must be an ISO 3166 code such as DE or US-CA", i)
		}
		if r.Count < 0 {
			return bad("affected[%d].count must be 0 or more", i)
		}
	}
	if c := o.Content; c != nil && (c.SubjectsApprox != nil && *c.SubjectsApprox < 0 || c.RecordsApprox != nil && *c.RecordsApprox < 0) {
		return bad("approximate numbers of subjects and records must be 0 or more")
	}
	return nil
}

// Open validates an opening and starts its workflow. A second opening of the same id returns
// the id with ErrDuplicate: it is the same breach. An id another tenant's breach (or a request)
// holds is refused with ErrRejected.
func (s *Service) Open(ctx context.Context, o Opening) (string, error) {
	if err := s.Validate(o); err != nil {
		return "", err
	}
	if o.BreachID == "" {
		o.BreachID = newID()
	}
	t, _ := s.Cfg.Tenant(o.TenantID)
	in := workflows.BreachInput{
		BreachID: o.BreachID, TenantID: o.TenantID, Title: strings.TrimSpace(o.Title), AwareAt: o.AwareAt.UTC(),
		DeterminedAt: o.DeterminedAt, OpenedBy: o.OpenedBy,
		Facts: workflows.BreachFacts{Establishment: t.BreachEstablishment(), Affected: o.Affected, Listed: t.Breach.Listed,
			HIPAA: t.Breach.HIPAA, NIS2: t.Breach.NIS2, SmallAgent: t.Breach.SmallAgent, Reminders: t.Breach.Reminders},
	}
	if o.Content != nil {
		in.Content = &workflows.BreachContent{Art33: *o.Content}
	}
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       o.BreachID,
		TaskQueue:                s.Cfg.Temporal.TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without it the client hands back the running breach as if just started.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		// Read back on a second opening, which must not depend on a worker answering a query.
		Memo: map[string]any{memoTenant: o.TenantID},
	}, workflows.BreachWorkflow, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return s.duplicate(ctx, o)
	}
	if err != nil {
		return "", fmt.Errorf("starting the breach workflow: %w", err)
	}
	return o.BreachID, nil
}

const memoTenant = "lethe_breach_tenant"

// duplicate answers an opening whose id has a workflow: the same breach when it is this
// tenant's breach; workflow IDs are shared by every tenant and by requests, so anything else
// is refused.
func (s *Service) duplicate(ctx context.Context, o Opening) (string, error) {
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, o.BreachID, "")
	if err != nil {
		return "", fmt.Errorf("reading the workflow of breach %s: %w", o.BreachID, err)
	}
	var tenant string
	if p := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[memoTenant]; p != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &tenant); err != nil {
			return "", fmt.Errorf("reading the tenant of breach %s: %w", o.BreachID, err)
		}
	}
	if tenant != o.TenantID {
		return "", fmt.Errorf("%w: the id %s is taken", ErrRejected, o.BreachID)
	}
	return o.BreachID, fmt.Errorf("%w: %s", ErrDuplicate, o.BreachID)
}

// Get returns tenant's breach: live from its workflow while open, else as the register last
// recorded it, with the time left on each clock as of now.
func (s *Service) Get(ctx context.Context, tenant, id string) (workflows.BreachState, error) {
	var st workflows.BreachState
	rec, err := s.Store.Breaches().Get(ctx, tenant, id)
	switch {
	case err == nil:
		if err := json.Unmarshal(rec.State, &st); err != nil {
			return st, fmt.Errorf("decoding breach %s: %w", id, err)
		}
	case !errors.Is(err, store.ErrNotFound):
		return st, err
	}
	if st.Status != workflows.BreachClosed {
		// Just opened, the register may not hold the breach yet: the workflow does.
		if v, qerr := s.Temporal.QueryWorkflow(ctx, id, "", workflows.QueryBreach); qerr == nil {
			var live workflows.BreachState
			if v.Get(&live) == nil && live.TenantID != "" {
				st = live
			}
		}
	}
	if st.TenantID == "" || st.TenantID != tenant {
		return workflows.BreachState{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if len(st.Notices) > 0 {
		p, err := s.Store.Notices().Progress(ctx, id)
		if err != nil {
			return st, err
		}
		st.Subjects = &p
	}
	st.SetAsOf(s.now())
	return st, nil
}

// Update sends an entry (content, assessment, notification, materiality, close) to an open
// breach and waits for the workflow to record it. An entry its validator refuses wraps
// ErrRejected with the reason.
func (s *Service) Update(ctx context.Context, tenant, id, update string, arg any) (workflows.BreachState, error) {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		return workflows.BreachState{}, err
	}
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: update, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var st workflows.BreachState
	if err == nil {
		err = h.Get(ctx, &st)
	}
	var notFound *serviceerror.NotFound
	var app interface{ Message() string }
	switch {
	case errors.As(err, &notFound):
		return st, fmt.Errorf("%w: the breach is closed", ErrRejected)
	case errors.As(err, &app):
		return st, fmt.Errorf("%w: %s", ErrRejected, app.Message())
	case err != nil:
		return st, err
	}
	st.SetAsOf(s.now())
	return st, nil
}

// List returns the tenant's breaches, latest awareness first.
func (s *Service) List(ctx context.Context, tenant, status string, limit int) ([]store.BreachRow, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.Store.Breaches().List(ctx, store.BreachFilter{TenantID: tenant, Status: status, Limit: limit})
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// newID is a short, unguessable breach reference such as B-7K3QF2M9XA.
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "B-" + strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=")
}
