package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/workflows"
)

// closedAs checks that the workflow ended with an error and that its last recorded transition
// says so: status failed, the closure action, the phase it was in, the state marked closed and
// a reason naming the cause.
func (w *world) closedAs(t *testing.T, closeStatus, phase, cause string) activities.Transition {
	t.Helper()
	require.True(t, w.env.IsWorkflowCompleted())
	require.Error(t, w.env.GetWorkflowError())
	require.NotEmpty(t, w.transitions)
	last := w.transitions[len(w.transitions)-1]
	require.Equal(t, domain.StatusFailed, last.Status)
	require.Equal(t, workflows.ActionClosed, last.Action)
	require.Equal(t, closeStatus, last.Detail["close_status"])
	require.Equal(t, phase, last.Detail["phase"])
	reason, _ := last.Detail["note"].(string)
	require.Contains(t, reason, cause)
	require.Contains(t, reason, "Nothing more happens on its own")
	state, _ := last.State.(map[string]any)
	require.Equal(t, true, state["closed"], "the recorded state is marked closed")
	require.Equal(t, reason, state["failure_reason"])
	return last
}

func TestFailureWhileReceivedIsRecorded(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeAccess)
	in.Policy.Country = "ZZ" // accepted before submissions were checked
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	w.closedAs(t, "failed", domain.StatusReceived, "no public-holiday calendar for country ZZ")
}

func TestFailureWhileIdentityPendingIsRecorded(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeAccess)
	in.IdentityVerified = false
	in.Policy.ClockStart = "verification"
	in.Policy.Country = "ZZ"
	w.update(t, time.Hour, workflows.UpdateVerifyIdentity, workflows.Verification{Method: "email_code", Actor: "subject"}, false)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	w.closedAs(t, "failed", domain.StatusIdentityPending, "no public-holiday calendar for country ZZ")
}

func TestFailureWhilePendingApprovalIsRecorded(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeRestriction)
	in.Policy.ManualApproval = true
	w.failRecord = func(tr activities.Transition) error {
		if tr.Status == domain.StatusInProgress {
			return temporal.NewNonRetryableApplicationError("encoding request state", activities.ErrPermanent, nil)
		}
		return nil
	}
	w.update(t, time.Hour, workflows.UpdateApprove, workflows.Decision{Actor: "sam"}, false)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	w.closedAs(t, "failed", domain.StatusPendingApproval, "encoding request state")
}

func TestFailureWhileInProgressIsRecorded(t *testing.T) {
	w := newWorld(t)
	w.failRecord = func(tr activities.Transition) error {
		if tr.Status == domain.StatusCompleted {
			return temporal.NewNonRetryableApplicationError("the event does not match its schema", activities.ErrPermanent, nil)
		}
		return nil
	}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeErasure))
	w.closedAs(t, "failed", domain.StatusInProgress, "the event does not match its schema")
}

// A workflow canceled in Temporal still records why it ended (the disconnected context).
func TestCancellationInTemporalIsRecorded(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeErasure)
	in.Policy.ManualApproval = true
	w.env.RegisterDelayedCallback(w.env.CancelWorkflow, time.Hour)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	w.closedAs(t, "canceled", domain.StatusPendingApproval, "canceled in Temporal")
}

// Nobody retrying within the window closes the request, and the reason says so.
func TestRetryWindowOverIsRecorded(t *testing.T) {
	w := newWorld(t)
	w.answer = func(d activities.Dispatch, _ int) (domain.Output, error) {
		return domain.Output{}, temporal.NewNonRetryableApplicationError("list API refused the key", activities.ErrPermanent, nil)
	}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeAccess))
	w.closedAs(t, "failed", domain.StatusFailed, "nobody retried the failed connectors within the retry window")
}
