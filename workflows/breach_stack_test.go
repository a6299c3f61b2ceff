package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// The breach workflow with Lethe's real activities (PostgreSQL, the Kafka broker, Mailgun's
// stand-in) and time skipped through 75 hours: the register holds the breach, its content, its
// clocks and the late notification with its reasons; every reminder and the escalation is on
// lethe.events, in the audit trail and mailed (reminders to staff and the DPO, the escalation to
// the DPO); the audit trail holds references, not the content.
func TestBreachActivitiesRecordPublishAndMail(t *testing.T) {
	tenant := config.Tenant{ID: "salon", Name: "Salon Example", Country: "DE", TimeZone: "Europe/Berlin",
		ContactEmail: "privacy@salon.example", DPOEmail: "dpo@salon.example", StaffEmail: "team@salon.example"}
	w := newRealWorld(t, tenant)
	w.env.RegisterWorkflow(workflows.BreachWorkflow)
	w.env.SetStartTime(breachAware.Add(time.Hour))
	in := breachInput("DE", breachAware)
	in.Content = &workflows.BreachContent{Art33: store.Art33{Nature: "Booking database copied by an intruder", ContactPoint: "dpo@salon.example"}}
	late := breachAware.Add(75 * time.Hour)
	w.update(t, late.Sub(breachAware.Add(time.Hour)), workflows.UpdateBreachNotification, workflows.BreachNotification{
		Rule: "gdpr-art33-authority", Actor: "dpo@salon", Reference: "BfDI-2026-118", LateReasons: "the processor told us on day 3"})
	w.update(t, late.Add(time.Minute).Sub(breachAware.Add(time.Hour)), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "measures complete"})
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, in)
	require.True(t, w.env.IsWorkflowCompleted())
	require.NoError(t, w.env.GetWorkflowError())

	types := []string{"breach.opened", "breach.clock_reminder", "breach.clock_escalated", "breach.notification_recorded", "breach.closed", "breach.activity_failed"}
	var got []string
	for _, e := range w.events(t, 8, types...) {
		require.Equal(t, "b1", e.BreachID)
		got = append(got, e.Type)
	}
	assert.Equal(t, []string{"breach.opened", "breach.clock_reminder", "breach.clock_reminder", "breach.clock_reminder", "breach.clock_reminder",
		"breach.clock_escalated", "breach.notification_recorded", "breach.closed"}, got)

	reminder := "Reminder: breach b1 at Salon Example has a notification due by 2026-03-09 16:00 UTC"
	overdue := "Overdue: breach b1 at Salon Example had a notification due by 2026-03-09 16:00 UTC"
	assert.Equal(t, []string{reminder, reminder, reminder, reminder}, w.mailTo("team@salon.example"))
	assert.Equal(t, []string{reminder, reminder, reminder, reminder, overdue}, w.mailTo("dpo@salon.example"))

	rec, err := w.acts.Store.Breaches().Get(context.Background(), "salon", "b1")
	require.NoError(t, err)
	assert.Equal(t, workflows.BreachClosed, rec.Status)
	assert.True(t, breachAware.Equal(rec.AwareAt))
	require.Len(t, rec.Contents, 1)
	assert.Equal(t, "Booking database copied by an intruder", rec.Contents[0].Nature)
	statuses := map[string]string{}
	for _, c := range rec.Clocks {
		statuses[c.RuleID] = c.Status
	}
	assert.Equal(t, map[string]string{"gdpr-art33-authority": "notified_late", "gdpr-art33-register": "documented"}, statuses)
	require.Len(t, rec.Notifications, 1)
	assert.True(t, rec.Notifications[0].Late)
	assert.Equal(t, "the processor told us on day 3", rec.Notifications[0].LateReasons)
	assert.Contains(t, string(rec.State), `"missing"`)

	assert.Equal(t, map[string]int{"breach.opened": 1, "breach.clock_reminder": 4, "breach.clock_escalated": 1,
		"breach.notification_recorded": 1, "breach.closed": 1, "staff.notified": 9},
		w.audited(t, append(types, "staff.notified")...))
	events, err := w.acts.Store.Audit().List(context.Background(), store.AuditFilter{TenantID: "salon"})
	require.NoError(t, err)
	for _, e := range events {
		assert.Equal(t, "b1", e.BreachID, e.Action)
		for k, v := range e.Detail {
			if s, ok := v.(string); ok {
				assert.NotContains(t, strings.ToLower(s), "intruder", "audit detail %s of %s holds content text", k, e.Action)
			}
		}
	}
}
