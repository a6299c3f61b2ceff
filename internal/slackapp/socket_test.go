package slackapp_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// In Socket Mode the stack's Slack part connects out to Slack (apps.connections.open, then the
// WebSocket); an approver's click arriving as an envelope approves the erasure, which runs, and
// the envelope is acknowledged. No HTTP endpoint is served in this test.
func TestSocketModeClickApproves(t *testing.T) {
	tenants := strings.Replace(teststack.SlackSalon, "      signing_secret: {env: SALON_SLACK_SIGNING_SECRET}",
		"      signing_secret: {env: SALON_SLACK_SIGNING_SECRET}\n      mode: socket\n      app_token: {env: SALON_SLACK_APP_TOKEN}", 1)
	s := teststack.New(t, teststack.Options{Name: "slack-socket", Tenants: tenants, Slack: true, Env: map[string]string{"SALON_SLACK_APP_TOKEN": "xapp-salon-test"}})
	s.RunAll()
	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: demo.ClearCustomerEmail})
	(&slackStack{Stack: s, t: t, slack: s.Slack}).message(id, posted)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.Slack.SocketInteract(ctx, slackstandin.Click("UAPPROVER", "CAPPROVALS", slackmsg.BlockDecide, slackmsg.ActionApprove, id))
	require.NoError(t, err, "the click is acknowledged")
	st := s.Await(id)
	require.Equal(t, domain.StatusCompleted, st.Status)
	assert.Equal(t, "slack:UAPPROVER", st.ApprovedBy)

	// /privacy arrives over the same connection and is answered in the acknowledgement.
	ack, err := s.Slack.SocketCommand(ctx, slack.SlashCommand{Command: "/privacy", Text: "status " + id, UserID: "USTAFF", ChannelID: "CAPPROVALS"})
	require.NoError(t, err, "the command is acknowledged")
	var answer struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	require.NoError(t, json.Unmarshal(ack, &answer), "the acknowledgement carries the answer: %s", ack)
	assert.Equal(t, "ephemeral", answer.ResponseType)
	assert.Contains(t, answer.Text, id)
	assert.Contains(t, string(ack), domain.StatusCompleted)
	assert.NotContains(t, string(ack), demo.ClearCustomerEmail, "only the masked address")
}
