package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/standin"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// noticeWorld runs the notice workflow with time skipped, on the real store and activities
// against the Mailgun stand-in.
type noticeWorld struct {
	st      *store.Store
	mailgun *standin.Server
	acts    *activities.Activities
	breach  string
}

func newNoticeWorld(t *testing.T, people int) *noticeWorld {
	t.Helper()
	ctx := context.Background()
	w := &noticeWorld{st: migratedStore(t), mailgun: standin.New(), breach: "B-NOTICE"}
	t.Cleanup(w.mailgun.Stop)
	_, err := w.st.Breaches().Open(ctx, w.st.Pool, store.BreachRow{ID: w.breach, TenantID: "salon", Title: "Stolen laptop",
		Status: "open", AwareAt: time.Now(), OpenedBy: "dpo", OpenedAt: time.Now()})
	require.NoError(t, err)
	var rs []store.Recipient
	for i := range people {
		rs = append(rs, store.Recipient{Email: fmt.Sprintf("person%05d@example.com", i)})
	}
	added, err := w.st.Notices().AddRecipients(ctx, "", w.breach, "csv", rs)
	require.NoError(t, err)
	require.EqualValues(t, people, added)
	mg, err := mail.NewMailgun(mail.Config{Domain: "mg.salon.example", APIKey: "key-notice", APIBase: w.mailgun.URL(), From: "privacy@mg.salon.example"})
	require.NoError(t, err)
	w.acts = &activities.Activities{Store: w.st, Mail: mg, Batch: mg, NoticeSettle: 5 * time.Minute,
		Tenants: map[string]config.Tenant{"salon": {ID: "salon", Name: "Salon Example", ContactEmail: "privacy@salon.example"}}}
	return w
}

// run executes the workflow to its end, following each continue-as-new with a new run as the
// server would, and returns the result and how many batches each run sent.
func (w *noticeWorld) run(t *testing.T, in workflows.BreachNoticeInput) (workflows.NoticeProgress, []int) {
	t.Helper()
	p, runs, err := w.runUntil(t, in, nil)
	require.NoError(t, err)
	return p, runs
}

// runUntil is run with a hook on each run's environment (e.g. to cancel it); it returns the
// last run's error.
func (w *noticeWorld) runUntil(t *testing.T, in workflows.BreachNoticeInput, hook func(*testsuite.TestWorkflowEnvironment)) (workflows.NoticeProgress, []int, error) {
	t.Helper()
	var runs []int
	for {
		var s testsuite.WorkflowTestSuite
		s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))))
		env := s.NewTestWorkflowEnvironment()
		env.SetTestTimeout(2 * time.Minute)
		env.RegisterWorkflow(workflows.BreachNoticeWorkflow)
		env.RegisterWorkflow(workflows.NoticeForgetWorkflow)
		env.RegisterActivity(w.acts)
		// The activities and the stand-in read the skipped clock, as the settle window does.
		w.acts.Now, w.mailgun.Now = env.Now, env.Now
		batches := 0
		env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			if info.ActivityType.Name == "SendNoticeBatch" && info.Attempt == 1 {
				batches++
			}
		})
		if hook != nil {
			hook(env)
		}
		env.ExecuteWorkflow(workflows.BreachNoticeWorkflow, in)
		require.True(t, env.IsWorkflowCompleted())
		runs = append(runs, batches)
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
			continue
		}
		var p workflows.NoticeProgress
		if err == nil {
			require.NoError(t, env.GetWorkflowResult(&p))
		}
		return p, runs, err
	}
}

func (w *noticeWorld) input() workflows.BreachNoticeInput {
	return workflows.BreachNoticeInput{BreachID: w.breach, TenantID: "salon", Run: 1, Found: true, BatchSize: 100, Parallel: 2, BatchesPerRun: 6,
		Content: activities.NoticeContent{Nature: "A laptop with the customer list was stolen.", ContactPoint: "dpo@salon.example",
			Consequences: "Someone may try to phish you.", Measures: "We reset every password."}}
}

// exactlyOnce checks that every person got one copy, addressed to them alone.
func (w *noticeWorld) exactlyOnce(t *testing.T, people int) {
	t.Helper()
	counts := w.mailgun.Count()
	assert.Len(t, counts, people, "people who got the notice")
	for addr, n := range counts {
		if n != 1 {
			t.Errorf("%s got %d copies", addr, n)
		}
	}
	assert.Zero(t, w.mailgun.Exposed(), "copies showing another person's address")
	p, err := w.st.Notices().Progress(context.Background(), w.breach)
	require.NoError(t, err)
	assert.EqualValues(t, people, p.Sent)
	assert.Zero(t, p.Pending+p.Sending+p.Failed)
}

// 2,500 people in batches of 100, two at a time, six batches a run: the workflow continues as
// new until everyone is notified, no run's history holds more than six batches, and each
// person's copy carries their own number back for the delivery webhook.
func TestBreachNoticeBatchesAndContinuesAsNew(t *testing.T) {
	w := newNoticeWorld(t, 2500)
	p, runs := w.run(t, w.input())
	assert.EqualValues(t, 2500, p.Sent)
	// Two claims at once may split the people unevenly (SKIP LOCKED), never share one.
	assert.GreaterOrEqual(t, p.Batches, 25)
	assert.Greater(t, len(runs), 4, "runs")
	for i, n := range runs {
		assert.LessOrEqual(t, n, 6, "batches in run %d", i+1)
	}
	assert.Equal(t, p.Batches, w.mailgun.Messages(), "one Mailgun call a batch")
	w.exactlyOnce(t, 2500)
	seq := map[string]string{}
	for _, c := range w.mailgun.Copies() {
		seq[c.To] = c.Variables[mail.RecipientVariable]
		assert.Equal(t, w.breach, c.Variables[activities.BreachVariable])
		assert.Contains(t, c.Text, "Someone may try to phish you.")
		assert.Contains(t, c.Text, "dpo@salon.example")
	}
	assert.Equal(t, "1", seq["person00000@example.com"])
	assert.Equal(t, "2500", seq["person02499@example.com"])
}

// A send whose answer is lost after Mailgun queued it is found in Mailgun's events and not sent
// again; one lost before Mailgun queued it is sent again once the settle window has passed; a
// refusal (HTTP 503) is sent again at once.
func TestBreachNoticeBatchInDoubtIsSentOnce(t *testing.T) {
	for _, c := range []struct {
		name     string
		fault    func(*standin.Server)
		resolved int
		calls    int
	}{
		{"answer lost after queueing", func(s *standin.Server) { s.LoseAnswers(1) }, 1, 3},
		{"request lost before queueing", func(s *standin.Server) { s.DropRequests(1) }, 0, 3},
		{"refused", func(s *standin.Server) { s.Refuse(1, 503) }, 0, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newNoticeWorld(t, 250)
			c.fault(w.mailgun)
			in := w.input()
			in.Parallel = 1
			p, _ := w.run(t, in)
			assert.EqualValues(t, 250, p.Sent)
			assert.Equal(t, c.resolved, p.Resolved, "batches resolved from Mailgun's events")
			assert.Equal(t, c.calls, w.mailgun.Messages(), "messages Mailgun queued")
			w.exactlyOnce(t, 250)
		})
	}
}

// A run cancelled while two batches are in doubt leaves nobody "sending": the batch Mailgun
// queued (its answer lost) is found in Mailgun's events and recorded sent, the one lost on the
// way in is released with the reason once the settle window has passed, and the next run tells
// the released people first and then the rest, everyone exactly once.
func TestStoppedNoticeRunIsReleasedAndResumedOnce(t *testing.T) {
	ctx := context.Background()
	w := newNoticeWorld(t, 450)
	w.mailgun.DropRequests(1)
	w.mailgun.LoseAnswers(1)
	in := w.input()
	_, _, err := w.runUntil(t, in, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(env.CancelWorkflow, 500*time.Millisecond) // both batches wait to be retried
	})
	require.Error(t, err, "the run was cancelled")
	p, err := w.st.Notices().Progress(ctx, w.breach)
	require.NoError(t, err)
	assert.Zero(t, p.Sending, "people left sending by the stopped run")
	assert.EqualValues(t, 100, p.Sent, "the batch Mailgun queued, found in its events")
	assert.EqualValues(t, 350, p.Pending, "the released batch and the rest")
	assert.Equal(t, 1, w.mailgun.Messages(), "messages Mailgun queued")
	bs, err := w.st.Notices().Unsettled(ctx, w.breach, 1, 1)
	require.NoError(t, err)
	assert.Empty(t, bs)

	in.Run = 2
	p2, _ := w.run(t, in)
	assert.EqualValues(t, 350, p2.Sent)
	w.exactlyOnce(t, 450)
}
