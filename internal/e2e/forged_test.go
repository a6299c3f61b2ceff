package e2e_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/workflows"
)

// command reads the command the request's workflow sent to the database connector.
func (s *stack) command(id string) protocol.Command {
	s.t.Helper()
	m := s.nextMessage(protocol.CommandTopic("database"), func(m bus.Message) bool {
		var c protocol.Command
		return json.Unmarshal(m.Value, &c) == nil && c.RequestID == id
	})
	var cmd protocol.Command
	require.NoError(s.t, json.Unmarshal(m.Value, &cmd))
	return cmd
}

// deadLettered waits for the dead letter of a result published with key, and returns its reason.
func (s *stack) deadLettered(key string) string {
	s.t.Helper()
	m := s.nextMessage(bus.TopicDLQ, func(m bus.Message) bool {
		var dl protocol.DeadLetter
		return json.Unmarshal(m.Value, &dl) == nil && dl.Key == key && strings.HasSuffix(dl.SourceTopic, bus.TopicResults)
	})
	var dl protocol.DeadLetter
	require.NoError(s.t, json.Unmarshal(m.Value, &dl))
	return dl.Reason
}

// snapshot is what a forged result must not change: the read model and the workflow.
func (s *stack) snapshot(id string) string {
	s.t.Helper()
	d, err := s.Deps.Temporal.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(s.t, err)
	var row string
	require.NoError(s.t, s.Deps.Store.Pool.QueryRow(context.Background(),
		`SELECT status || ' ' || updated_at::text || ' ' || state::text FROM requests WHERE id = $1`, id).Scan(&row))
	return row + " " + d.WorkflowExecutionInfo.Status.String()
}

// A result carrying request A's genuine task token but naming request B is dead-lettered with
// the reason, and completes neither; the genuine results complete both afterwards.
func TestResultWithAnotherRequestsTokenIsDeadLettered(t *testing.T) {
	s := newStack(t)
	s.Run("worker", s.Deps.RunWorker)
	s.Run("bridge", s.Deps.RunBridge)
	a := s.Submit(domain.TypeRestriction, connectors.Subject{Email: demo.ClearCustomerEmail})
	b := s.Submit(domain.TypeRestriction, connectors.Subject{Email: demo.HealthNotesCustomerEmail})
	cmdA, cmdB := s.command(a), s.command(b)
	beforeA, beforeB := s.snapshot(a), s.snapshot(b)

	forged := protocol.NewResult(cmdA, protocol.StatusSucceeded, time.Now())
	forged.RequestID, forged.IdempotencyKey = cmdB.RequestID, cmdB.IdempotencyKey
	forged.Output = &protocol.Output{Result: json.RawMessage(`{"restricted":true,"rows":1}`)}
	ctx := context.Background()
	require.NoError(t, s.Deps.Bus.Publish(ctx, bus.TopicResults, "forged-"+a, forged))

	reason := s.deadLettered("forged-" + a)
	assert.Contains(t, reason, "request_id")
	assert.Contains(t, reason, "does not match")
	assert.Equal(t, beforeA, s.snapshot(a), "request A unchanged")
	assert.Equal(t, beforeB, s.snapshot(b), "request B unchanged")
	assert.Contains(t, beforeA, enums.WORKFLOW_EXECUTION_STATUS_RUNNING.String())

	for _, cmd := range []protocol.Command{cmdA, cmdB} {
		good := protocol.NewResult(cmd, protocol.StatusSucceeded, time.Now())
		good.Output = &protocol.Output{Result: json.RawMessage(`{"restricted":true,"rows":1}`)}
		require.NoError(t, s.Deps.Bus.Publish(ctx, bus.TopicResults, cmd.RequestID, good))
	}
	assert.Equal(t, domain.StatusCompleted, s.Await(a).Status)
	assert.Equal(t, domain.StatusCompleted, s.Await(b).Status)
}

// An access result that names another request's export files (genuine files, genuine
// checksums, the result otherwise correct) is dead-lettered and puts nothing in the package.
func TestResultNamingAnotherRequestsExportIsDeadLettered(t *testing.T) {
	s := newStack(t)
	s.Run("worker", s.Deps.RunWorker)
	s.Run("bridge", s.Deps.RunBridge)
	stopConnector := s.Run("connector", func(ctx context.Context) error { return s.Deps.RunConnector(ctx, "database") })

	victim := s.Submit(domain.TypeAccess, connectors.Subject{Email: demo.HealthNotesCustomerEmail})
	require.Equal(t, domain.StatusCompleted, s.Await(victim).Status)
	vm := s.nextMessage(bus.TopicResults, func(m bus.Message) bool {
		var r protocol.Result
		return json.Unmarshal(m.Value, &r) == nil && r.RequestID == victim && r.Status == protocol.StatusSucceeded
	})
	var victimResult protocol.Result
	require.NoError(t, json.Unmarshal(vm.Value, &victimResult))
	require.NotEmpty(t, victimResult.Output.Exports)
	victimBefore := s.snapshot(victim)

	// The attacker's request waits for its result: no connector answers it.
	stopConnector()
	attacker := s.Submit(domain.TypeAccess, connectors.Subject{Email: demo.ClearCustomerEmail})
	cmd := s.command(attacker)
	before := s.snapshot(attacker)

	forged := protocol.NewResult(cmd, protocol.StatusSucceeded, time.Now())
	forged.Output = &protocol.Output{Exports: victimResult.Output.Exports, Counts: victimResult.Output.Counts, Result: victimResult.Output.Result}
	require.NoError(t, s.Deps.Bus.Publish(context.Background(), bus.TopicResults, "forged-"+attacker, forged))

	reason := s.deadLettered("forged-" + attacker)
	assert.Contains(t, reason, "outside the export location")
	assert.Equal(t, before, s.snapshot(attacker), "the attacker's request unchanged")
	assert.Equal(t, victimBefore, s.snapshot(victim), "the victim's request unchanged")

	// The real connector then answers the attacker's command with the attacker's own records.
	s.Run("connector again", func(ctx context.Context) error { return s.Deps.RunConnector(ctx, "database") })
	st := s.Await(attacker)
	require.Equal(t, domain.StatusCompleted, st.Status)
	for name, raw := range readZip(t, s, st.Export.URI) {
		assert.NotContains(t, string(raw), demo.HealthNotesCustomerEmail, "%s holds the victim's data", name)
	}
}

// A command dispatched again after staff retried a failed request (same idempotency key, a new
// activity and task token) is recorded anew, and its genuine result completes the request.
func TestRetriedCommandsResultIsAccepted(t *testing.T) {
	s := newStack(t)
	s.Run("worker", s.Deps.RunWorker)
	s.Run("bridge", s.Deps.RunBridge)
	id := s.Submit(domain.TypeRestriction, connectors.Subject{Email: demo.ClearCustomerEmail})
	first := s.command(id)
	failed := protocol.NewResult(first, protocol.StatusFailed, time.Now())
	failed.Error = &protocol.ResultError{Message: "system down for maintenance", Permanent: true}
	ctx := context.Background()
	require.NoError(t, s.Deps.Bus.Publish(ctx, bus.TopicResults, id, failed))
	deadline := time.Now().Add(time.Minute)
	for s.status(id) != domain.StatusFailed {
		require.True(t, time.Now().Before(deadline), "request never failed")
		time.Sleep(50 * time.Millisecond)
	}

	_, err := s.Deps.Requests().Decide(ctx, "salon", id, workflows.UpdateRetry, workflows.Decision{Actor: "sam"})
	require.NoError(t, err)
	m := s.nextMessage(protocol.CommandTopic("database"), func(m bus.Message) bool {
		var c protocol.Command
		return json.Unmarshal(m.Value, &c) == nil && c.RequestID == id && c.TaskToken != first.TaskToken
	})
	var again protocol.Command
	require.NoError(t, json.Unmarshal(m.Value, &again))
	good := protocol.NewResult(again, protocol.StatusSucceeded, time.Now())
	good.Output = &protocol.Output{Result: json.RawMessage(`{"restricted":true,"rows":1}`)}
	require.NoError(t, s.Deps.Bus.Publish(ctx, bus.TopicResults, id, good))
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
}

// status is the request's status in the read model.
func (s *stack) status(id string) string {
	s.t.Helper()
	var st string
	require.NoError(s.t, s.Deps.Store.Pool.QueryRow(context.Background(), `SELECT status FROM requests WHERE id = $1`, id).Scan(&st))
	return st
}
