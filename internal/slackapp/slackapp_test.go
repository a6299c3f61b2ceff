package slackapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/slackapp"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const secret = teststack.SlackSecret

type slackStack struct {
	*teststack.Stack
	t     *testing.T
	slack *slackstandin.Server
	srv   *httptest.Server
}

func newSlackStack(t *testing.T) *slackStack {
	s := teststack.New(t, teststack.Options{Name: "slack", Tenants: teststack.SlackSalon, Slack: true})
	s.RunAll()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &slackStack{Stack: s, t: t, slack: s.Slack, srv: srv}
}

// message waits for the approval message of request id and returns it.
func (s *slackStack) message(id string, until func(slackstandin.Message) bool) slackstandin.Message {
	s.t.Helper()
	var found slackstandin.Message
	require.Eventually(s.t, func() bool {
		for _, m := range s.slack.Messages() {
			if strings.Contains(string(m.Blocks), id) && until(m) {
				found = m
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "approval message of %s", id)
	return found
}

func posted(slackstandin.Message) bool { return true }

// shown is a message's blocks as text, as decoded from JSON.
func shown(t *testing.T, m slackstandin.Message) string {
	var v any
	require.NoError(t, json.Unmarshal(m.Blocks, &v))
	return fmt.Sprint(v)
}

// post sends a payload signed with secret at ts to /slack/interactions.
func (s *slackStack) post(payload any, secret string, ts time.Time) int {
	s.t.Helper()
	req, err := slackstandin.Interaction(s.srv.URL+"/slack/interactions", secret, payload, ts)
	require.NoError(s.t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	res.Body.Close()
	return res.StatusCode
}

func click(user, action, id string) map[string]any {
	return slackstandin.Click(user, "CAPPROVALS", slackmsg.BlockDecide, action, id)
}

func submit(user, callback, id, text string) map[string]any {
	return slackstandin.Submit(user, callback, id, slackmsg.BlockText, slackmsg.ActionText, text)
}

func (s *slackStack) status(id string) string {
	s.t.Helper()
	st, err := s.Deps.Requests().Get(context.Background(), "salon", id)
	require.NoError(s.t, err)
	return st.Status
}

func (s *slackStack) audited(id, action string) []string {
	s.t.Helper()
	rows, err := s.Deps.Store.Pool.Query(context.Background(), `SELECT actor FROM audit_events WHERE request_id = $1 AND action = $2 ORDER BY id`, id, action)
	require.NoError(s.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		require.NoError(s.t, rows.Scan(&a))
		out = append(out, a)
	}
	return out
}

// Approval from Slack on a whole stack: signed clicks decide, forged and stale ones get 401,
// only approvers decide, a second click decides nothing, the deny modal's reason reaches the
// subject, and the message shows who decided.
func TestSlackApprovals(t *testing.T) {
	s := newSlackStack(t)

	t.Run("ForgedAndStaleGet401AndDecideNothing", func(t *testing.T) {
		id := s.Submit(domain.TypeErasure, connectors.Subject{Email: demo.ClearCustomerEmail})
		s.message(id, posted)
		assert.Equal(t, http.StatusUnauthorized, s.post(click("UAPPROVER", slackmsg.ActionApprove, id), "not-the-signing-secret", time.Now()))
		assert.Equal(t, http.StatusUnauthorized, s.post(click("UAPPROVER", slackmsg.ActionApprove, id), secret, time.Now().Add(-6*time.Minute)))
		unsigned, err := http.Post(s.srv.URL+"/slack/interactions", "application/x-www-form-urlencoded", strings.NewReader("payload={}"))
		require.NoError(t, err)
		unsigned.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, unsigned.StatusCode)
		big := click("UAPPROVER", slackmsg.ActionApprove, id)
		big["padding"] = strings.Repeat("x", slackapp.MaxBody)
		assert.Equal(t, http.StatusRequestEntityTooLarge, s.post(big, secret, time.Now()))
		assert.Equal(t, domain.StatusPendingApproval, s.status(id))
		assert.Empty(t, s.audited(id, "request.in_progress"))
		_, err = s.Deps.Requests().Decide(context.Background(), "salon", id, workflows.UpdateCancel, workflows.Decision{Actor: "test", Reason: "done"})
		require.NoError(t, err)
	})

	t.Run("ApproverApprovesOnceAndTheMessageShowsWho", func(t *testing.T) {
		id := s.Submit(domain.TypeErasure, connectors.Subject{Email: demo.ClearCustomerEmail})
		m := s.message(id, posted)
		assert.Equal(t, "CAPPROVALS", m.Channel)
		assert.NoError(t, slackmsg.CheckMessage(m.Blocks))
		assert.Contains(t, string(m.Blocks), slackmsg.Mask(demo.ClearCustomerEmail))
		assert.NotContains(t, string(m.Blocks), demo.ClearCustomerEmail)

		require.Equal(t, http.StatusOK, s.post(click("UAPPROVER", slackmsg.ActionApprove, id), secret, time.Now()))
		require.Equal(t, http.StatusOK, s.post(click("UAPPROVER", slackmsg.ActionApprove, id), secret, time.Now()))
		st := s.Await(id)
		assert.Equal(t, domain.StatusCompleted, st.Status)
		assert.Equal(t, "slack:UAPPROVER", st.ApprovedBy)
		assert.Equal(t, []string{"slack:UAPPROVER"}, s.audited(id, "request.in_progress")[:1], "the Slack user is the actor")
		assert.Len(t, s.audited(id, "request.in_progress"), 1, "approved once")

		m = s.message(id, func(m slackstandin.Message) bool { return m.Updates > 0 })
		assert.Contains(t, shown(t, m), "<@UAPPROVER>")
		assert.NotContains(t, string(m.Blocks), slackmsg.ActionApprove, "no buttons once decided")
		assert.Len(t, s.slack.Messages(), 2, "one message per request, updated in place")
	})

	t.Run("OthersCannotDecideAndAreAudited", func(t *testing.T) {
		id := s.Submit(domain.TypeErasure, connectors.Subject{Email: demo.ClearCustomerEmail})
		s.message(id, posted)
		before := len(s.slack.Ephemerals())
		// UOTHER approves restrictions only.
		require.Equal(t, http.StatusOK, s.post(click("UOTHER", slackmsg.ActionApprove, id), secret, time.Now()))
		assert.Equal(t, domain.StatusPendingApproval, s.status(id))
		assert.Equal(t, []string{"slack:UOTHER"}, s.audited(id, "slack.decision_refused"))
		eph := s.slack.Ephemerals()
		require.Len(t, eph, before+1)
		assert.Equal(t, "UOTHER", eph[before].User)
		// A member of the user group may.
		require.Equal(t, http.StatusOK, s.post(click("UGROUPMEMBER", slackmsg.ActionApprove, id), secret, time.Now()))
		assert.Equal(t, "slack:UGROUPMEMBER", s.Await(id).ApprovedBy)
	})

	t.Run("DenyModalsReasonReachesTheSubject", func(t *testing.T) {
		email := "nora.deny@example.com"
		id := s.Submit(domain.TypeErasure, connectors.Subject{Email: email})
		s.message(id, posted)
		views := len(s.slack.Views())
		require.Equal(t, http.StatusOK, s.post(click("UAPPROVER", slackmsg.ActionDeny, id), secret, time.Now()))
		require.Len(t, s.slack.Views(), views+1, "the deny button opens the modal")
		assert.NoError(t, slackmsg.CheckModal(s.slack.Views()[views]))
		require.Equal(t, http.StatusOK, s.post(submit("UAPPROVER", slackmsg.CallbackDeny, id, "We hold no account for this address"), secret, time.Now()))
		st := s.Await(id)
		assert.Equal(t, domain.StatusDenied, st.Status)
		var denial string
		for _, e := range s.Mailgun.Events() {
			if a, ok := e.(*events.Accepted); ok && a.Recipient == email && strings.Contains(a.Message.Headers.Subject, "declined") {
				denial = a.Message.Headers.Subject
			}
		}
		require.NotEmpty(t, denial, "the subject is told")
		var text string
		for _, m := range s.Mailbox.Messages(email) {
			if m.Kind == "denial" {
				text = m.Text
			}
		}
		assert.Contains(t, text, "We hold no account for this address")
		m := s.message(id, func(m slackstandin.Message) bool { return m.Updates > 0 })
		assert.Contains(t, shown(t, m), "Denied")
		assert.Contains(t, shown(t, m), "<@UAPPROVER>")
	})

	t.Run("AskForInformationMailsTheSubjectAndIsRecorded", func(t *testing.T) {
		email := "nora.ask@example.com"
		id := s.Submit(domain.TypeErasure, connectors.Subject{Email: email})
		s.message(id, posted)
		require.Equal(t, http.StatusOK, s.post(submit("UAPPROVER", slackmsg.CallbackAskInfo, id, "Which salon did you visit?"), secret, time.Now()))
		st, err := s.Deps.Requests().Get(context.Background(), "salon", id)
		require.NoError(t, err)
		require.Len(t, st.InformationRequests, 1)
		assert.Equal(t, "slack:UAPPROVER", st.InformationRequests[0].Actor)
		assert.Equal(t, []string{"slack:UAPPROVER"}, s.audited(id, "request.information_requested"))
		require.Eventually(t, func() bool {
			for _, m := range s.Mailbox.Messages(email) {
				if m.Kind == "information_request" && strings.Contains(m.Text, "Which salon did you visit?") {
					return true
				}
			}
			return false
		}, time.Minute, 50*time.Millisecond)
		assert.Equal(t, domain.StatusPendingApproval, s.status(id))
	})

	t.Run("ThrottledPostRetriesWhenSlackSaysAndARetryUpdates", func(t *testing.T) {
		ctx := context.Background()
		act := s.Deps.Activities()
		m := activities.ApprovalMessage{RequestID: "R-THROTTLED", TenantID: "salon", Type: domain.TypeErasure, DueDate: "2027-01-04"}
		s.slack.Throttle("chat.postMessage", 1, 7*time.Second)
		err := act.PostApprovalMessage(ctx, m)
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app)
		assert.Equal(t, 7*time.Second, app.NextRetryDelay(), "Retry-After is the next retry delay")
		before := len(s.slack.Messages())
		require.NoError(t, act.PostApprovalMessage(ctx, m))
		require.NoError(t, act.PostApprovalMessage(ctx, m)) // the activity retried after its post
		msgs := s.slack.Messages()
		require.Len(t, msgs, before+1, "posted once")
		assert.Equal(t, 1, msgs[before].Updates, "the retry updated it")
	})

	for _, m := range s.slack.Messages() {
		assert.NoError(t, slackmsg.CheckMessage(m.Blocks), "every posted message keeps Slack's limits and masks emails")
	}
}
