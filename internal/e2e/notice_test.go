package e2e_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

// A high-risk breach of a salon with 10,000 customers: the database connector finds them all,
// the worker is killed while the batches go out and started again, and each customer got the
// notice exactly once, counted at Mailgun's stand-in, none seeing another's address.
func TestBreachNoticeReachesTenThousandOnceAcrossAWorkerKill(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e", Customers: 10_000,
		Env: map[string]string{"LETHE_MAIL_BATCH_SETTLE": "1s"}}), t: t}
	// Each batch takes a while, as at Mailgun, so the kill comes with batches still to send.
	s.Standin.Delay(300 * time.Millisecond)
	ctx := context.Background()
	worker := s.start("worker")
	s.start("bridge")
	s.start("connector", "database")

	svc := s.Deps.Breaches()
	id := s.notifyEveryCustomer("Your name, email and phone may be used for phishing.")

	// Mid-way through the ten batches, the worker dies and another one takes over.
	deadline := time.Now().Add(3 * time.Minute)
	for s.Standin.Messages() < 3 {
		require.False(t, time.Now().After(deadline), "the first batches never went out")
		time.Sleep(20 * time.Millisecond) // polling the stand-in, not waiting out a timer
	}
	worker.kill()
	sentAtKill := s.Standin.Messages()
	s.start("worker")

	st := awaitNoticeRun(t, svc, id, deadline)
	require.Equal(t, workflows.NoticeDone, st.Notices[0].Status, st.Notices[0].Error)
	t.Logf("batches sent before the kill: %d of %d; resolved from Mailgun's events: %d", sentAtKill, s.Standin.Messages(), st.Notices[0].Progress.Resolved)
	assert.Less(t, sentAtKill, 10, "the kill came mid-way")

	rows, err := s.Demo.Query(ctx, `SELECT email FROM customers`)
	require.NoError(t, err)
	want := map[string]bool{}
	for rows.Next() {
		var e string
		require.NoError(t, rows.Scan(&e))
		want[e] = true
	}
	require.NoError(t, rows.Err())
	require.Len(t, want, 10_000)
	counts := s.Standin.Count()
	assert.Len(t, counts, len(want), "people who got the notice")
	twice, missed := 0, 0
	for e := range want {
		switch counts[e] {
		case 1:
		case 0:
			missed++
		default:
			twice++
		}
	}
	assert.Zero(t, twice, "customers notified more than once")
	assert.Zero(t, missed, "customers never notified")
	assert.Zero(t, s.Standin.Exposed(), "copies showing another customer's address")
	require.NotNil(t, st.Subjects)
	assert.EqualValues(t, 10_000, st.Subjects.Sent)

	// Listed in the register, the people the find wrote to its file are deleted from the export
	// store, and the run's addresses are set to be forgotten after mail.notice_retention.
	found, err := filepath.Glob(filepath.Join(s.Env["LETHE_EXPORTS_DIR"], "salon", id, "notice-*", "*"))
	require.NoError(t, err)
	assert.Empty(t, found, "the find's files")
	d, err := s.Deps.Temporal.DescribeWorkflowExecution(ctx, id+"-notice-1-forget", "")
	require.NoError(t, err, "the run's addresses are set to be forgotten")
	assert.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, d.WorkflowExecutionInfo.Status)
}

// notifyEveryCustomer opens a high-risk breach of the salon (the database copied, with these
// consequences) and starts notifying every customer the database connector finds; it returns
// the breach's ID.
func (s *stack) notifyEveryCustomer(consequences string) string {
	s.t.Helper()
	ctx, svc := context.Background(), s.Deps.Breaches()
	id := "B-" + testenv.Suffix()
	content := store.Art33{Nature: "The booking database was copied by an intruder.", ContactPoint: "dpo@salon.example",
		Consequences: consequences, Measures: "We closed the hole and reset every password."}
	_, err := svc.Open(ctx, breaches.Opening{BreachID: id, TenantID: "salon", Title: "Database copied", AwareAt: time.Now().Add(-time.Hour),
		Content: &content, OpenedBy: "dpo"})
	require.NoError(s.t, err)
	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachAssessment, workflows.BreachAssessment{Risk: "high", Rationale: "health notes", Actor: "dpo"})
	require.NoError(s.t, err)
	_, err = svc.Notify(ctx, "salon", id, breaches.Subjects{Actor: "dpo", Find: []workflows.SubjectFind{
		{Finder: "customers_created_between", Params: map[string]any{"from": "1900-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}}}})
	require.NoError(s.t, err)
	return id
}

// awaitNoticeRun polls the register until the breach's one notice run has ended, and returns
// the breach as it then stands.
func awaitNoticeRun(t *testing.T, svc *breaches.Service, id string, deadline time.Time) workflows.BreachState {
	t.Helper()
	for {
		st, err := svc.Get(context.Background(), "salon", id)
		require.NoError(t, err)
		if len(st.Notices) == 1 && st.Notices[0].Status != workflows.NoticeRunning {
			return st
		}
		require.False(t, time.Now().After(deadline), "the notice run never ended: %+v", st.Notices)
		time.Sleep(50 * time.Millisecond) // polling the register, not waiting out a timer
	}
}
