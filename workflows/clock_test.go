package workflows_test

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/workflows"
)

// realWorld runs the request workflow with time skipped but Lethe's real activities: schema
// validation, the Kafka broker, PostgreSQL for the audit trail and Mailgun's stand-in. Only the
// connector fan-out is stood in for, as no connector runs here.
type realWorld struct {
	env     *testsuite.TestWorkflowEnvironment
	acts    *activities.Activities
	mailgun mailgun.MockServer
	prefix  string
	logs    *os.File
}

// migratedStore is Lethe's store on a fresh database of the test PostgreSQL.
func migratedStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), testenv.PostgresURL(t), 4)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	_, err = st.Migrate(context.Background())
	require.NoError(t, err)
	return st
}

func newRealWorld(t *testing.T, tenant config.Tenant) *realWorld {
	t.Helper()
	ctx := context.Background()
	st := migratedStore(t)
	w := &realWorld{prefix: "clock-" + testenv.Suffix() + ".", mailgun: mailgun.NewMockServer()}
	t.Cleanup(w.mailgun.Stop)
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t), Partitions: 1, TopicPrefix: w.prefix, Logger: slog.Default()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureTopics(ctx, bus.TopicEvents))
	mg, err := mail.NewMailgun(mail.Config{Domain: "mg.salon.example", APIKey: "key-clock", APIBase: w.mailgun.URL(), From: "privacy@mg.salon.example"})
	require.NoError(t, err)
	w.acts = &activities.Activities{
		Store: st, Bus: b, Mail: mg, PublicURL: "https://privacy.salon.example",
		MyAccountPath: func(string) string { return "/myaccount" },
		Tenants:       map[string]config.Tenant{tenant.ID: tenant},
	}

	var s testsuite.WorkflowTestSuite
	// Activities log through the suite's logger: the log is kept to check what reached it.
	w.logs, err = os.CreateTemp(t.TempDir(), "log")
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.logs.Close() })
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, w.logs), &slog.HandlerOptions{Level: slog.LevelWarn}))))
	w.env = s.NewTestWorkflowEnvironment()
	w.env.SetTestTimeout(2 * time.Minute)
	w.env.RegisterWorkflow(workflows.RequestWorkflow)
	w.env.RegisterWorkflow(workflows.ExportExpiryWorkflow)
	w.env.RegisterActivity(w.acts)
	var a *activities.Activities
	w.env.OnActivity(a.DispatchCommand, mock.Anything, mock.Anything).Return(domain.Output{}, nil)
	return w
}

// update sends a decision at a given workflow time and fails the test if it does not succeed.
func (w *realWorld) update(t *testing.T, after time.Duration, name string, arg any) {
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(name, "u-"+name, &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("%s rejected: %v", name, err) },
			OnAccept:   func() {},
			OnComplete: func(_ any, err error) { require.NoError(t, err, name) },
		}, arg)
	}, after)
}

// events reads lethe.events from the beginning until it holds want events of the given types.
func (w *realWorld) events(t *testing.T, want int, types ...string) []bus.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: w.acts.Bus.Brokers(), Topic: w.prefix + bus.TopicEvents, Partition: 0, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []bus.Event
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "reading lethe.events after %d of %d events", len(out), want)
		var e bus.Event
		require.NoError(t, json.Unmarshal(m.Value, &e))
		for _, typ := range types {
			if e.Type == typ {
				out = append(out, e)
			}
		}
	}
	return out
}

// mailTo lists the subject lines Mailgun's stand-in accepted for one address, in order.
func (w *realWorld) mailTo(addr string) []string {
	var out []string
	for _, e := range w.mailgun.Events() {
		if a, ok := e.(*events.Accepted); ok && a.Recipient == addr {
			out = append(out, a.Message.Headers.Subject)
		}
	}
	return out
}

// Every reminder and the overdue escalation are published, audited and mailed (reminders to
// staff, the escalation to the DPO), for a tenant east of UTC (whose times carry a "+" offset),
// one west of it, and one across the date line.
func TestRemindersAndEscalationArePublishedAndMailed(t *testing.T) {
	cases := []struct {
		zone, regime, country string
		staff                 string // "" falls back to the DPO
		due                   string
	}{
		{"Europe/Berlin", "gdpr", "DE", "team@salon.example", "2026-02-16"},
		{"America/Los_Angeles", "ccpa", "", "", "2026-03-01"},
		{"Pacific/Auckland", "gdpr", "", "desk@salon.example", "2026-02-16"},
	}
	for _, c := range cases {
		t.Run(c.zone, func(t *testing.T) {
			tenant := config.Tenant{ID: "salon", Name: "Salon Example", Regime: c.regime, Country: c.country, TimeZone: c.zone,
				ContactEmail: "privacy@salon.example", DPOEmail: "dpo@salon.example", StaffEmail: c.staff}
			w := newRealWorld(t, tenant)
			st := w.runUnanswered(t, c.regime, c.country, c.zone)
			require.Equal(t, c.due, st.DueDate)

			got := w.events(t, 3, "request.deadline_reminder", "request.overdue_escalated", "request.activity_failed")
			var kinds []string
			for _, e := range got {
				require.Equal(t, c.due, e.Data["due_date"])
				kinds = append(kinds, e.Type)
			}
			require.Equal(t, []string{"request.deadline_reminder", "request.deadline_reminder", "request.overdue_escalated"}, kinds)

			staff := cmp.Or(c.staff, "dpo@salon.example")
			reminder := "Reminder: access request r1 at Salon Example is due by " + c.due
			overdue := "Overdue: access request r1 at Salon Example was due by " + c.due
			if c.staff == "" {
				require.Equal(t, []string{reminder, reminder, overdue}, w.mailTo(staff), "reminders and escalation to the DPO")
			} else {
				require.Equal(t, []string{reminder, reminder}, w.mailTo(staff))
				require.Equal(t, []string{overdue}, w.mailTo("dpo@salon.example"))
			}
			require.Empty(t, w.mailTo("privacy@salon.example"), "the public contact address is not the DPO's")
			require.Equal(t, map[string]int{"request.deadline_reminder": 2, "request.overdue_escalated": 1, "staff.notified": 3},
				w.audited(t, "request.deadline_reminder", "request.overdue_escalated", "staff.notified", "request.activity_failed"))
		})
	}
}

// runUnanswered runs an access request nobody approves until it is long overdue, then withdraws
// it, and returns its final state.
func (w *realWorld) runUnanswered(t *testing.T, regime, country, zone string) domain.RequestState {
	t.Helper()
	w.env.SetStartTime(received)
	in := input(domain.TypeAccess)
	in.Policy.Regime, in.Policy.Country, in.Policy.TimeZone = regime, country, zone
	in.Policy.ManualApproval = true
	w.update(t, 70*24*time.Hour, workflows.UpdateCancel, workflows.Decision{Actor: "subject", Reason: "withdrawn"})
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	require.True(t, w.env.IsWorkflowCompleted())
	require.NoError(t, w.env.GetWorkflowError())
	var st domain.RequestState
	require.NoError(t, w.env.GetWorkflowResult(&st))
	require.Equal(t, domain.StatusCanceled, st.Status)
	return st
}

// audited counts the audit events of the given actions.
func (w *realWorld) audited(t *testing.T, actions ...string) map[string]int {
	t.Helper()
	rows, err := w.acts.Store.Pool.Query(context.Background(),
		`SELECT action, count(*) FROM audit_events WHERE action = ANY($1) GROUP BY action`, actions)
	require.NoError(t, err)
	out := map[string]int{}
	for rows.Next() {
		var a string
		var n int
		require.NoError(t, rows.Scan(&a, &n))
		out[a] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// A reminder that cannot be delivered fails at once, not after endless retries, is reported in
// the audit trail and on lethe.events, and the clock still reaches the escalation.
func TestUndeliverableReminderIsReportedAndTheClockGoesOn(t *testing.T) {
	// The staff address is not a usable mailbox: Mailgun's stand-in refuses it, and no retry
	// can change that.
	tenant := config.Tenant{ID: "salon", Name: "Salon Example", Regime: "gdpr", TimeZone: "Europe/Berlin",
		DPOEmail: "dpo@salon.example", StaffEmail: "not-an-address"}
	w := newRealWorld(t, tenant)
	var attempts atomic.Int32
	w.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "Remind" {
			attempts.Add(1)
		}
	})
	w.runUnanswered(t, "gdpr", "DE", "Europe/Berlin")

	got := w.events(t, 5, "request.deadline_reminder", "request.overdue_escalated", "request.activity_failed")
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, e.Type)
		if e.Type == "request.activity_failed" {
			require.Equal(t, "Remind", e.Data["activity"])
			require.Contains(t, e.Data["reason"], "recipient address is not valid")
		}
	}
	require.Equal(t, []string{
		"request.deadline_reminder", "request.activity_failed",
		"request.deadline_reminder", "request.activity_failed",
		"request.overdue_escalated",
	}, kinds)
	require.Equal(t, int32(3), attempts.Load(), "each alarm is tried once: the failure is permanent")
	require.Equal(t, map[string]int{"request.deadline_reminder": 2, "request.overdue_escalated": 1, "staff.notified": 1, "request.activity_failed": 2},
		w.audited(t, "request.deadline_reminder", "request.overdue_escalated", "staff.notified", "request.activity_failed"))
	require.Equal(t, []string{"Overdue: access request r1 at Salon Example was due by 2026-02-16"}, w.mailTo("dpo@salon.example"))
	logged := 0
	logs, err := os.ReadFile(w.logs.Name())
	require.NoError(t, err)
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, `msg="activity failed for good"`) {
			logged++
			require.Contains(t, line, "activity=Remind")
			require.Contains(t, line, "request_id=r1")
		}
	}
	require.Equal(t, 2, logged, "each failed reminder is logged once")
}

// An event the schema refuses (a key with a "+", as reminders once had) fails the activity for
// good, marked so that Temporal does not retry it.
func TestEventRefusedBySchemaIsPermanent(t *testing.T) {
	w := newRealWorld(t, config.Tenant{ID: "salon", Name: "Salon Example", Regime: "gdpr", DPOEmail: "dpo@salon.example"})
	err := w.acts.Remind(context.Background(), activities.Reminder{
		Key: "r1:reminder:2026-02-09T00:00:00+01:00", RequestID: "r1", TenantID: "salon",
		Kind: "reminder", DueDate: "2026-02-16", At: received,
	})
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.True(t, app.NonRetryable(), "a schema violation is not retried: %v", err)
	require.Equal(t, activities.ErrPermanent, app.Type())
	require.Contains(t, err.Error(), "does not match its schema")
}
