package slackmsg_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/slackmsg"
)

// Every message and modal Lethe builds keeps Slack's Block Kit limits and shows no email
// address unmasked, however long what it shows.
func TestEveryMessageKeepsSlackLimits(t *testing.T) {
	long := strings.Repeat("a reason that goes on ", 400)
	var many []string
	for range 300 {
		many = append(many, "connector-instance-with-a-long-name")
	}
	base := slackmsg.Approval{
		RequestID: "r-0123456789abcdef", Type: "erasure", DueDate: "2026-12-30", DaysLeft: 28,
		Verified: true, Method: "email_code", Connectors: []string{"salon-db", "newsletter"},
		MaskedEmail: slackmsg.Mask("hanna.schmidt@example.com"), CustomerID: "C-1001",
	}
	decided := base
	decided.Decision = &slackmsg.Decision{Outcome: "approved", Actor: slackmsg.Actor("U0APPROVER"), At: time.Now()}
	blocked := base
	blocked.Preflight = &slackmsg.Preflight{Blocked: true, Reasons: []string{long, long}}
	huge := base
	huge.Connectors, huge.CustomerID, huge.Preflight = many, strings.Repeat("9", 5000), &slackmsg.Preflight{Error: long}
	unverified := base
	unverified.Verified, unverified.DueDate, unverified.MaskedEmail = false, "", ""

	for name, a := range map[string]slackmsg.Approval{"pending": base, "decided": decided, "blocked": blocked, "huge": huge, "unverified": unverified} {
		raw, err := json.Marshal(slackmsg.ApprovalBlocks(a))
		require.NoError(t, err)
		assert.NoError(t, slackmsg.CheckMessage(raw), name)
		assert.Empty(t, slackmsg.UnmaskedEmail(slackmsg.ApprovalText(a)), name)
	}
	due := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for name, a := range map[string]slackmsg.Alert{
		"reminder":   slackmsg.DeadlineAlert("reminder", base.RequestID, "erasure", "2026-12-30", 7),
		"overdue":    slackmsg.DeadlineAlert("overdue", base.RequestID, strings.Repeat("erasure", 100), "2026-12-30", -2),
		"breach":     slackmsg.BreachAlert("reminder", "b-1", long, "the supervisory authority", due, 12),
		"escalation": slackmsg.BreachAlert("escalation", "b-1", "gdpr art. 33", long, due, -1),
	} {
		raw, err := json.Marshal(slackmsg.AlertBlocks(a))
		require.NoError(t, err)
		assert.NoError(t, slackmsg.CheckMessage(raw), name)
	}
	var digest slackmsg.Digest
	for range 500 {
		digest.Requests = append(digest.Requests, slackmsg.DueRequest{ID: base.RequestID, Type: "erasure", DueDate: "2026-12-08", DaysLeft: 6})
		digest.Breaches = append(digest.Breaches, slackmsg.OpenBreach{ID: "b-1", Rule: "gdpr art. 33", Due: due, HoursLeft: 40})
	}
	for name, d := range map[string]slackmsg.Digest{"empty": {Date: "2026-12-02"}, "long": digest} {
		raw, err := json.Marshal(slackmsg.DigestBlocks(d))
		require.NoError(t, err)
		assert.NoError(t, slackmsg.CheckMessage(raw), name)
	}
	var soon []slackmsg.DueRequest
	for i := range 500 {
		soon = append(soon, slackmsg.DueRequest{ID: fmt.Sprintf("R-%010d", i), Type: "erasure", DueDate: "2026-12-30", DaysLeft: i - 3})
	}
	answers := map[string][]slack.Block{
		"status": slackmsg.StatusBlocks(slackmsg.Status{RequestID: base.RequestID, Type: "access", Status: "in_progress", DueDate: "2026-12-30",
			DaysLeft: -2, MaskedEmail: base.MaskedEmail, CustomerID: strings.Repeat("9", 5000)}),
		"due": slackmsg.DueBlocks(soon, "2026-12-09"), "none due": slackmsg.DueBlocks(nil, "2026-12-09"),
		"help": slackmsg.NoticeBlocks(slackmsg.HelpText), "notice": slackmsg.NoticeBlocks(long),
	}
	for name, blocks := range answers {
		raw, err := json.Marshal(blocks)
		require.NoError(t, err)
		assert.NoError(t, slackmsg.CheckMessage(raw), name)
	}
	raw, err := json.Marshal(slackmsg.BreachModal("salon CHELPDESK", time.Now()))
	require.NoError(t, err)
	assert.NoError(t, slackmsg.CheckModal(raw), "breach modal")
	for _, cb := range []string{slackmsg.CallbackDeny, slackmsg.CallbackAskInfo} {
		raw, err := json.Marshal(slackmsg.TextModal(cb, base.RequestID))
		require.NoError(t, err)
		assert.NoError(t, slackmsg.CheckModal(raw), cb)
	}
}

// The checker itself catches what Slack refuses.
func TestCheckFindsBrokenLimits(t *testing.T) {
	for name, blocks := range map[string]string{
		"unmasked email":  `[{"type":"section","text":{"type":"mrkdwn","text":"hanna@example.com"}}]`,
		"long section":    `[{"type":"section","text":{"type":"mrkdwn","text":"` + strings.Repeat("x", 3001) + `"}}]`,
		"input in a post": `[{"type":"input","element":{"type":"plain_text_input","action_id":"a"},"label":{"type":"plain_text","text":"l"}}]`,
		"long action_id":  `[{"type":"actions","elements":[{"type":"button","action_id":"` + strings.Repeat("a", 256) + `","text":{"type":"plain_text","text":"b"}}]}]`,
		"many blocks":     "[" + strings.TrimSuffix(strings.Repeat(`{"type":"divider"},`, 51), ",") + "]",
		"many options":    `[{"type":"actions","elements":[{"type":"static_select","action_id":"s","options":[` + strings.TrimSuffix(strings.Repeat(`{"text":{"type":"plain_text","text":"o"},"value":"v"},`, 26), ",") + `]}]}]`,
	} {
		assert.Error(t, slackmsg.CheckMessage([]byte(blocks)), name)
	}
	assert.Equal(t, "h***@example.com", slackmsg.Mask("hanna@example.com"))
	assert.Empty(t, slackmsg.UnmaskedEmail("h***@example.com"))
}
