package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
)

// slackWorld is the real world of the clock tests with a Slack tenant posting to the stand-in.
func slackWorld(t *testing.T) (*realWorld, *slackstandin.Server) {
	t.Helper()
	slk := slackstandin.New()
	t.Cleanup(slk.Stop)
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
