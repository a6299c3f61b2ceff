package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// An erasure that needs approval is posted to the tenant's Slack channel, a signed click by an
// approver approves it, the erasure runs through the connector to completion, and the message
// is updated in place to show who approved; no message shows the subject's address.
func TestErasureApprovedFromSlackEndToEnd(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e-slack", Tenants: teststack.SlackSalon, Slack: true}), t: t}
	s.RunAll()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	email := demo.ClearCustomerEmail
	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: email})
	var msg slackstandin.Message
	require.Eventually(t, func() bool {
		for _, m := range s.Slack.Messages() {
			if strings.Contains(string(m.Blocks), id) {
				msg = m
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "the approval message is posted")
	assert.Equal(t, "CAPPROVALS", msg.Channel)

	req, err := slackstandin.Interaction(srv.URL+"/slack/interactions", teststack.SlackSecret,
		slackstandin.Click("UAPPROVER", msg.Channel, slackmsg.BlockDecide, slackmsg.ActionApprove, id), time.Now())
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	st := s.Await(id)
	s.record(id, "request_erasure_slack_approved")
	require.Equal(t, domain.StatusCompleted, st.Status)
	assert.Equal(t, "slack:UAPPROVER", st.ApprovedBy)
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM customers WHERE email = $1`, email), "erased in the salon's database")

	msgs := s.Slack.Messages()
	require.Len(t, msgs, 1, "one message, updated in place")
	assert.Equal(t, 1, msgs[0].Updates)
	assert.Contains(t, string(msgs[0].Blocks), `Approved* by \u003c@UAPPROVER\u003e`)
	for _, m := range msgs {
		assert.NoError(t, slackmsg.CheckMessage(m.Blocks))
		assert.NotContains(t, string(m.Blocks)+m.Text, email)
	}
}
