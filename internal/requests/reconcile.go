package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// Closure is one request the reconciliation found closed in Temporal but live in the read model.
type Closure struct {
	RequestID   string `json:"request_id"`
	TenantID    string `json:"tenant_id"`
	CloseStatus string `json:"close_status"` // failed, timed_out, terminated, canceled, unknown
	Reason      string `json:"reason"`
}

// Recorder writes a lifecycle step to the read model, the audit trail and lethe.events: the
// worker's RecordTransition, called directly.
type Recorder func(ctx context.Context, t activities.Transition) error

// Reconcile finds every request whose read model shows a live status while its workflow is
// closed (terminated or timed out in Temporal, where no workflow code runs; or failed where the
// workflow could not record it) and records the closure with Temporal's close status and a
// reason a DPO can act on. It is idempotent: a repaired request is closed and not listed again.
func (s *Service) Reconcile(ctx context.Context, record Recorder) ([]Closure, error) {
	var out []Closure
	after := ""
	for {
		rows, err := s.openRequests(ctx, after, 200)
		if err != nil {
			return out, err
		}
		for _, row := range rows {
			c, err := s.reconcileOne(ctx, row, record)
			if err != nil {
				return out, fmt.Errorf("reconciling request %s: %w", row.ID, err)
			}
			if c != nil {
				out = append(out, *c)
			}
		}
		if len(rows) < 200 {
			return out, nil
		}
		after = rows[len(rows)-1].ID
	}
}

type openRow struct {
	store.RequestRow
	state domain.RequestState
}

// openRequests lists started requests whose read model is neither terminal nor closed, by id
// from after.
func (s *Service) openRequests(ctx context.Context, after string, limit int) ([]openRow, error) {
	rows, err := s.Store.Requests().Open(ctx, after, domain.TerminalStatuses(), limit)
	if err != nil {
		return nil, err
	}
	out := make([]openRow, len(rows))
	for i, r := range rows {
		out[i].RequestRow = r
		if err := json.Unmarshal(r.State, &out[i].state); err != nil {
			return nil, fmt.Errorf("reading open requests: decoding request %s: %w", r.ID, err)
		}
	}
	return out, nil
}

func (s *Service) reconcileOne(ctx context.Context, row openRow, record Recorder) (*Closure, error) {
	closeStatus, cause, err := s.closeOf(ctx, row.ID)
	if err != nil || closeStatus == "" {
		return nil, err
	}
	reason := workflows.ClosureReason(closeStatus, cause, row.state.Status, row.state.DueDate)
	now := s.now()
	st := row.state
	phase := st.Status
	st.Status, st.Closed, st.FailureReason = domain.StatusFailed, true, reason
	st.Steps = append(st.Steps, domain.Step{At: now, Status: domain.StatusFailed, Note: reason})
	err = record(ctx, activities.Transition{
		Key: row.ID + ":closed", RequestID: row.ID, TenantID: row.TenantID, Type: row.Type,
		Status: domain.StatusFailed, Extended: row.Extended, Regime: row.Regime, Country: row.Country,
		ReceivedAt: st.ReceivedAt, DueDate: st.DueDate, Actor: "lethe (reconciliation)",
		Action: workflows.ActionClosed, At: now, State: st,
		Detail: map[string]any{"close_status": closeStatus, "phase": phase, "note": reason},
	})
	if err != nil {
		return nil, err
	}
	return &Closure{RequestID: row.ID, TenantID: row.TenantID, CloseStatus: closeStatus, Reason: reason}, nil
}

// closeOf asks Temporal how the request's workflow closed: "" while it runs (or completed,
// which records its own final status), else the close status and what Temporal recorded.
func (s *Service) closeOf(ctx context.Context, id string) (closeStatus, cause string, err error) {
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		// Past the namespace's retention: the workflow is gone, and with it how it ended.
		return "unknown", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("describing the workflow: %w", err)
	}
	info := desc.GetWorkflowExecutionInfo()
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_FAILED:
		closeStatus = "failed"
	case enums.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		closeStatus = "timed_out"
	case enums.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		closeStatus = "terminated"
	case enums.WORKFLOW_EXECUTION_STATUS_CANCELED:
		closeStatus = "canceled"
	default:
		return "", "", nil
	}
	it := s.Temporal.GetWorkflowHistory(ctx, id, info.GetExecution().GetRunId(), false, enums.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	if !it.HasNext() {
		return closeStatus, "", nil
	}
	ev, err := it.Next()
	if err != nil {
		return "", "", fmt.Errorf("reading the workflow's close event: %w", err)
	}
	if a := ev.GetWorkflowExecutionFailedEventAttributes(); a != nil {
		cause = a.GetFailure().GetMessage()
	}
	if a := ev.GetWorkflowExecutionTerminatedEventAttributes(); a != nil {
		var parts []string
		if a.GetIdentity() != "" {
			parts = append(parts, "by "+a.GetIdentity())
		}
		if r := strings.TrimSpace(a.GetReason()); r != "" {
			parts = append(parts, "reason given: "+r)
		}
		cause = strings.Join(parts, ", ")
	}
	return closeStatus, cause, nil
}
