package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/workflows"
)

// startDirect starts a request workflow with the given policy as Submit would have before
// today's checks (a request already running in a deployment), with its request row.
func (s *stack) startDirect(id string, p domain.Policy) {
	s.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	_, err := s.Deps.Store.Pool.Exec(ctx, `
		INSERT INTO requests (id, tenant_id, type, status, regime, country, received_at, state, started)
		VALUES ($1, 'salon', 'access', 'received', $2, $3, $4, '{}', false)`, id, p.Regime, p.Country, now)
	require.NoError(s.t, err)
	_, err = s.Deps.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.Cfg.Temporal.TaskQueue},
		workflows.RequestWorkflow, workflows.RequestInput{
			RequestID: id, TenantID: "salon", Type: domain.TypeAccess, ReceivedAt: now, Channel: "api",
			IdentityVerified: true, Policy: p,
		})
	require.NoError(s.t, err)
	// Marked started only once the workflow exists, as the request service does: a worker's
	// reconciliation in between must not find a started request without a workflow.
	_, err = s.Deps.Store.Pool.Exec(ctx, `UPDATE requests SET started = true WHERE id = $1`, id)
	require.NoError(s.t, err)
}

// letheCmd is one lethe command against the stack.
func (s *stack) letheCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(letheBinary(s.t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// lethe runs one lethe command that must succeed and returns its output.
func (s *stack) lethe(args ...string) string {
	s.t.Helper()
	out, err := s.letheCmd(args...).CombinedOutput()
	require.NoError(s.t, err, "lethe %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// closedEvent is the request.closed event of a request on lethe.events.
func (s *stack) closedEvent(id string) bus.Event {
	s.t.Helper()
	m := s.nextMessage(bus.TopicEvents, func(m bus.Message) bool {
		var e bus.Event
		return json.Unmarshal(m.Value, &e) == nil && e.RequestID == id && e.Type == workflows.ActionClosed
	})
	var e bus.Event
	require.NoError(s.t, json.Unmarshal(m.Value, &e))
	return e
}

// assertClosed checks that every view of the request says it failed, and why.
func (s *stack) assertClosed(id, closeStatus, cause string) {
	s.t.Helper()
	ctx := context.Background()
	st, err := s.Deps.Requests().Get(ctx, "salon", id)
	require.NoError(s.t, err)
	assert.Equal(s.t, domain.StatusFailed, st.Status, "the request shows failed, not a live status")
	assert.True(s.t, st.Closed)
	assert.Contains(s.t, st.FailureReason, cause)
	assert.Contains(s.t, st.FailureReason, "Nothing more happens on its own")

	var detail map[string]any
	require.NoError(s.t, s.Deps.Store.Pool.QueryRow(ctx,
		`SELECT detail FROM audit_events WHERE request_id = $1 AND action = $2`, id, workflows.ActionClosed).Scan(&detail))
	assert.Equal(s.t, closeStatus, detail["close_status"])
	assert.Contains(s.t, detail["note"], cause)

	ev := s.closedEvent(id)
	assert.Equal(s.t, domain.StatusFailed, ev.Status)
	assert.Equal(s.t, closeStatus, ev.Data["close_status"])
	assert.Contains(s.t, ev.Data["reason"], cause)

	show := s.lethe("requests", "show", id)
	assert.Contains(s.t, show, id+"  access  failed")
	assert.Contains(s.t, show, "closed: ")
}

// A workflow that fails records its failure itself before it closes: the request accepted
// with a country that has no holiday calendar no longer sits in received for ever.
func TestFailedWorkflowIsRecordedEverywhere(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	id := "R-FAIL-" + testenv.Suffix()
	s.startDirect(id, domain.Policy{Regime: "gdpr", Country: "ZZ", TimeZone: "Europe/Berlin"})
	err := s.Deps.Temporal.GetWorkflow(context.Background(), id, "").Get(context.Background(), nil)
	require.Error(t, err, "the workflow fails computing the due date")
	s.assertClosed(id, "failed", "no public-holiday calendar for country ZZ")
	s.record(id, "request_failed_closed")
}

// A workflow terminated from the Temporal CLI runs no code of Lethe's: the reconciliation
// finds it, from `lethe requests reconcile` and from every worker at start.
func TestTerminatedWorkflowsAreReconciled(t *testing.T) {
	s := newStack(t)
	stopWorker := s.Run("worker", s.Deps.RunWorker)
	ctx := context.Background()

	unverified, err := s.Deps.Requests().Submit(ctx, requests.Submission{
		TenantID: "salon", Type: domain.TypeAccess, Subject: connectors.Subject{Email: "someone.else@example.com"}, Channel: "api",
	})
	require.NoError(t, err)
	approval := "R-APPROVAL-" + testenv.Suffix()
	s.startDirect(approval, domain.Policy{Regime: "gdpr", Country: "DE", TimeZone: "Europe/Berlin", ManualApproval: true})
	s.awaitStatus(unverified, domain.StatusIdentityPending)
	s.awaitStatus(approval, domain.StatusPendingApproval)

	terminate := func(id, reason string) {
		out, err := exec.Command(testenv.TemporalBinary(t), "workflow", "terminate", "--address", testenv.TemporalHostPort(t),
			"--namespace", s.Cfg.Temporal.Namespace, "--workflow-id", id, "--reason", reason).CombinedOutput()
		require.NoError(t, err, "temporal workflow terminate: %s", out)
		desc, err := s.Deps.Temporal.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_TERMINATED, desc.GetWorkflowExecutionInfo().GetStatus())
	}
	terminate(unverified, "subject withdrew by phone")
	st, err := s.Deps.Requests().Get(ctx, "salon", unverified)
	require.NoError(t, err)
	require.Equal(t, domain.StatusIdentityPending, st.Status, "before reconciling, the read model still says live")

	out := s.lethe("requests", "reconcile")
	assert.Contains(t, out, unverified+"  terminated  ")
	assert.Contains(t, out, "1 request recorded as failed")
	s.assertClosed(unverified, "terminated", "reason given: subject withdrew by phone")
	assert.Contains(t, s.lethe("requests", "reconcile"), "0 requests recorded as failed", "a repaired request is not repaired again")

	// Forgotten by Temporal (past retention) while still live in the read model.
	forgotten, err := s.Deps.Requests().Submit(ctx, requests.Submission{
		TenantID: "salon", Type: domain.TypeAccess, Subject: connectors.Subject{Email: "a.third@example.com"}, Channel: "api",
	})
	require.NoError(t, err)
	s.awaitStatus(forgotten, domain.StatusIdentityPending)
	_, err = s.Deps.Temporal.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace: s.Cfg.Temporal.Namespace, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: forgotten},
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := s.Deps.Temporal.DescribeWorkflowExecution(ctx, forgotten, "")
		var nf *serviceerror.NotFound
		return errors.As(err, &nf)
	}, time.Minute, 50*time.Millisecond, "Temporal never forgot the workflow")
	assert.Contains(t, s.lethe("requests", "reconcile"), forgotten+"  unknown  ")
	st, err = s.Deps.Requests().Get(ctx, "salon", forgotten)
	require.NoError(t, err)
	assert.Equal(t, domain.StatusFailed, st.Status)
	assert.Contains(t, st.FailureReason, "Temporal no longer has its workflow")

	// Terminated while no worker runs: the next worker repairs it as it starts.
	stopWorker()
	terminate(approval, "duplicate of an earlier request")
	s.Run("worker again", s.Deps.RunWorker)
	s.awaitStatus(approval, domain.StatusFailed)
	s.assertClosed(approval, "terminated", "while it was waiting for approval")
}

// A country without a holiday calendar is refused by the CLI as by every other surface.
func TestCLIRefusesCountryWithoutCalendar(t *testing.T) {
	s := newStack(t)
	out, err := s.letheCmd("requests", "submit", "--type", "access", "--email", "cli@example.com", "--country", "ZZ").CombinedOutput()
	require.Error(t, err, "%s", out)
	assert.Contains(t, string(out), "country must be one of AT, BE,")
	var n int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM requests`).Scan(&n))
	assert.Zero(t, n, "nothing was recorded")
}
