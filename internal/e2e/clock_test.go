package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/internal/deadline"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

// A deadline reminder fires on the real Temporal server and worker for a tenant east of UTC:
// recorded in the audit trail and mailed to staff. The reminder is set a few seconds ahead
// (an exact offset before the due date) so the test need not wait for days.
func TestReminderOnTheRealServer(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e",
		Tenants: strings.Replace(teststack.Salon, "contact_email: privacy@salon.example", "contact_email: privacy@salon.example\n    staff_email: team@salon.example", 1)}), t: t}
	s.RunAll()
	ctx := context.Background()
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	received := time.Now().UTC()
	due, err := deadline.Due(received.In(berlin), deadline.Rule{Regime: deadline.GDPR, Country: "DE"}, false)
	require.NoError(t, err)
	id := "R-REMIND-" + strings.ToUpper(testenv.Suffix())
	in := workflows.RequestInput{
		RequestID: id, TenantID: "salon", Type: domain.TypeAccess, ReceivedAt: received, Channel: "api",
		IdentityVerified: true,
		Policy: domain.Policy{Regime: "gdpr", Country: "DE", TimeZone: "Europe/Berlin", ManualApproval: true,
			Reminders: []time.Duration{due.Sub(time.Now().Add(3 * time.Second))}},
	}
	_, err = s.Deps.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.Cfg.Temporal.TaskQueue}, workflows.RequestWorkflow, in)
	require.NoError(t, err)

	subject := "Reminder: access request " + id + " at Salon Example is due by " + due.Format(deadline.DateLayout)
	require.Eventually(t, func() bool { return len(s.mailTo("team@salon.example")) > 0 }, time.Minute, 100*time.Millisecond,
		"no reminder mailed to staff")
	require.Equal(t, []string{subject}, s.mailTo("team@salon.example"))
	var audited int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx,
		`SELECT count(*) FROM audit_events WHERE request_id = $1 AND action IN ('request.deadline_reminder', 'staff.notified')`, id).Scan(&audited))
	require.Equal(t, 2, audited, "the reminder and its email are in the audit trail")

	_, err = s.Deps.Requests().Decide(ctx, "salon", id, workflows.UpdateCancel, workflows.Decision{Actor: "sam", Reason: "test over"})
	require.NoError(t, err)
	require.Equal(t, domain.StatusCanceled, s.Await(id).Status)
	s.record(id, "request_access_reminded")
}
