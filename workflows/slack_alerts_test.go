package workflows_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// slackWorld is the real world of the clock tests with a Slack tenant posting to the stand-in.
func slackWorld(t *testing.T) (*realWorld, *slackstandin.Server) {
	t.Helper()
	slk := slackstandin.New()
	t.Cleanup(slk.Stop)
	t.Cleanup(func() {
		if err := slk.CheckSent(); err != nil {
			t.Error(err)
		}
	})
	w := newRealWorld(t, config.Tenant{ID: "salon", Name: "Salon Example", Regime: "gdpr", Country: "DE", TimeZone: "Europe/Berlin",
		DPOEmail: "dpo@salon.example", Slack: &config.Slack{ApprovalChannel: "CALERTS", DPOUser: "UDPO"}})
	w.acts.SlackAPI = slk.URL()
	return w, slk
}

// posted counts the stand-in's messages per channel, checking each keeps Slack's limits.
func posted(t *testing.T, slk *slackstandin.Server) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range slk.Messages() {
		require.NoError(t, slackmsg.CheckMessage(m.Blocks))
		require.Empty(t, slackmsg.UnmaskedEmail(m.Text))
		out[m.Channel] = append(out[m.Channel], m.Text)
	}
	return out
}

// Deadline reminders and the overdue escalation are posted to the tenant's channel and sent to
// the DPO directly, each once: the activity retried after posting posts nothing more.
func TestRemindersPostToSlackOnceAndReachTheDPO(t *testing.T) {
	w, slk := slackWorld(t)
	st := w.runUnanswered(t, "gdpr", "DE", "Europe/Berlin")
	want := []string{
		"Access request due 2026-02-16", "Access request due 2026-02-16",
		"Overdue: access request was due 2026-02-16",
	}
	require.Equal(t, map[string][]string{"CALERTS": want, "UDPO": want}, posted(t, slk))

	// The escalation's activity retried (its mail or audit failed after the posts).
	err := w.acts.Remind(context.Background(), activities.Reminder{
		Key: "r1:overdue:" + st.DueDate, RequestID: "r1", TenantID: "salon", Kind: "overdue", DueDate: st.DueDate, At: received,
	})
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{"CALERTS": want, "UDPO": want}, posted(t, slk), "posted once")
}

// A breach clock's reminder and escalation reach the channel and the DPO, once each.
func TestBreachClockAlarmsPostToSlackOnce(t *testing.T) {
	w, slk := slackWorld(t)
	ctx := context.Background()
	due := received.Add(72 * time.Hour)
	for _, kind := range []string{"reminder", "escalation", "escalation"} {
		require.NoError(t, w.acts.RemindBreach(ctx, activities.BreachAlarm{
			Key: "b1:" + kind, BreachID: "b1", TenantID: "salon", Kind: kind, Rule: "gdpr_art33", Regime: "gdpr",
			Notify: "the supervisory authority", Limit: "72h", Due: due, At: received,
		}))
	}
	got := posted(t, slk)
	require.Len(t, got["UDPO"], 2)
	assert.Equal(t, got["CALERTS"], got["UDPO"])
	assert.Contains(t, got["UDPO"][0], "Breach clock: notify the supervisory authority by")
	assert.Contains(t, got["UDPO"][1], "Escalation: breach clock past its limit")
}

// runDigest runs the digest workflow once, time skipped, at the given time.
func runDigest(t *testing.T, acts *activities.Activities, at time.Time) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(at)
	env.RegisterWorkflow(workflows.DigestWorkflow)
	env.RegisterActivity(acts)
	env.ExecuteWorkflow(workflows.DigestWorkflow)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
}

// The daily digest lists the open requests due within seven days and the open breaches with
// the hours left on their clocks, in the tenant's channel only, once a day however often run.
func TestDigestListsDueRequestsAndOpenBreaches(t *testing.T) {
	w, slk := slackWorld(t)
	ctx := context.Background()
	st := w.acts.Store
	now := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	for _, r := range []struct{ id, status, due string }{
		{"r-soon", domain.StatusInProgress, "2026-12-05"},
		{"r-overdue", domain.StatusPendingApproval, "2026-12-01"},
		{"r-later", domain.StatusInProgress, "2026-12-20"},
		{"r-done", domain.StatusCompleted, "2026-12-04"},
	} {
		require.NoError(t, st.Requests().Record(ctx, st.Pool, store.RequestRow{ID: r.id, TenantID: "salon", Type: domain.TypeErasure,
			Status: r.status, Regime: "gdpr", ReceivedAt: now.AddDate(0, -1, 0), DueDate: r.due, State: json.RawMessage(`{}`), UpdatedAt: now}))
	}
	due := now.Add(30 * time.Hour)
	for id, status := range map[string]string{"b-open": workflows.BreachOpen, "b-closed": workflows.BreachClosed} {
		_, err := st.Breaches().Open(ctx, st.Pool, store.BreachRow{ID: id, TenantID: "salon", Title: "Lost laptop", Status: status,
			AwareAt: now.Add(-42 * time.Hour), OpenedBy: "dpo", OpenedAt: now.Add(-40 * time.Hour)})
		require.NoError(t, err)
		require.NoError(t, st.Breaches().SetClocks(ctx, st.Pool, []store.BreachClock{{BreachID: id, RuleID: "gdpr_art33", RuleVersion: 1,
			Regime: "gdpr", Notify: "supervisory authority", Kind: "deadline", Starts: "awareness", DueAt: &due, Limit: "72 hours",
			Source: "Art. 33(1) GDPR", Status: workflows.ClockRunning, UpdatedAt: now}}))
	}

	runDigest(t, w.acts, now)
	runDigest(t, w.acts, now.Add(time.Hour)) // a rerun the same day
	msgs := slk.Messages()
	require.Len(t, msgs, 1, "one digest a day, to the channel only")
	require.Equal(t, "CALERTS", msgs[0].Channel)
	require.NoError(t, slackmsg.CheckMessage(msgs[0].Blocks))
	var shown []string
	var blocks []struct{ Text struct{ Text string } }
	require.NoError(t, json.Unmarshal(msgs[0].Blocks, &blocks))
	for _, b := range blocks {
		shown = append(shown, b.Text.Text)
	}
	text := strings.Join(shown, "\n")
	assert.Contains(t, text, "`r-soon` erasure, due 2026-12-05 (3 days left)")
	assert.Contains(t, text, "`r-overdue` erasure, due 2026-12-01 (1 day overdue)")
	assert.Contains(t, text, "`b-open` gdpr_art33, due 2026-12-03 13:00 UTC (30 hours left)")
	for _, absent := range []string{"r-later", "r-done", "b-closed"} {
		assert.NotContains(t, text, absent)
	}
	assert.Equal(t, "Privacy digest for 2026-12-02: 2 requests due within 7 days, 1 open breaches", msgs[0].Text)
}

// Slack refusing a post (throttled) does not hold back the email, and the retry posts once and
// mails nothing more.
func TestThrottledSlackStillMailsAndTheRetryPostsOnce(t *testing.T) {
	w, slk := slackWorld(t)
	ctx := context.Background()
	st := w.acts.Store
	require.NoError(t, st.Requests().Record(ctx, st.Pool, store.RequestRow{ID: "r2", TenantID: "salon", Type: domain.TypeErasure,
		Status: domain.StatusInProgress, Regime: "gdpr", ReceivedAt: received, DueDate: "2026-02-16", State: json.RawMessage(`{}`), UpdatedAt: received}))
	escalation := activities.Reminder{Key: "r2:overdue:2026-02-16", RequestID: "r2", TenantID: "salon", Kind: "overdue", DueDate: "2026-02-16", At: received}
	slk.Throttle("chat.postMessage", 1, 7*time.Second)
	err := w.acts.Remind(ctx, escalation)
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	assert.Equal(t, 7*time.Second, app.NextRetryDelay())
	overdue := []string{"Overdue: erasure request r2 at Salon Example was due by 2026-02-16"}
	require.Equal(t, overdue, w.mailTo("dpo@salon.example"), "mailed although Slack refused")

	require.NoError(t, w.acts.Remind(ctx, escalation))
	require.NoError(t, w.acts.Remind(ctx, escalation))
	want := []string{"Overdue: erasure request was due 2026-02-16"}
	assert.Equal(t, map[string][]string{"CALERTS": want, "UDPO": want}, posted(t, slk))
	assert.Equal(t, overdue, w.mailTo("dpo@salon.example"), "mailed once")
}
