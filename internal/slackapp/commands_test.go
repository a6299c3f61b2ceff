package slackapp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/slackapp"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

// answer is a /privacy answer as Slack reads it.
type answer struct {
	ResponseType string          `json:"response_type"`
	Text         string          `json:"text"`
	Blocks       json.RawMessage `json:"blocks"`
}

// command types /privacy text as user, signed with secret, at url's /slack/commands.
func command(t *testing.T, url, secret, user, text string) (int, answer) {
	t.Helper()
	req, err := slackstandin.Command(url+"/slack/commands", secret, user, "CHELPDESK", "/privacy", text, time.Now())
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var a answer
	if res.StatusCode == http.StatusOK && res.ContentLength != 0 {
		require.NoError(t, json.NewDecoder(res.Body).Decode(&a))
		assert.Equal(t, "ephemeral", a.ResponseType, "only the user who typed it sees the answer")
		assert.NoError(t, slackmsg.CheckMessage(a.Blocks), "the answer keeps Slack's limits and masks emails")
	}
	return res.StatusCode, a
}

// The /privacy command on a whole stack: only signed commands are answered; status, due and
// help answer the user alone; breach opens a modal whose submission opens a breach as the
// Slack user.
func TestSlackPrivacyCommand(t *testing.T) {
	s := newSlackStack(t)
	ctx := context.Background()
	email := "nora.status@example.com"
	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: email})
	s.message(id, posted)

	t.Run("ForgedSignatureGets401", func(t *testing.T) {
		code, _ := command(t, s.srv.URL, "not-the-signing-secret", "UAPPROVER", "status "+id)
		assert.Equal(t, http.StatusUnauthorized, code)
		unsigned, err := http.Post(s.srv.URL+"/slack/commands", "application/x-www-form-urlencoded", strings.NewReader("text=help"))
		require.NoError(t, err)
		unsigned.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, unsigned.StatusCode)
	})

	t.Run("HelpAndUnknownSubcommands", func(t *testing.T) {
		for _, text := range []string{"help", "", "frobnicate now"} {
			code, a := command(t, s.srv.URL, secret, "USTAFF", text)
			require.Equal(t, http.StatusOK, code, text)
			assert.Contains(t, string(a.Blocks), "/privacy status ID", text)
			assert.Contains(t, string(a.Blocks), "/privacy breach", text)
		}
	})

	t.Run("StatusShowsDueDateDaysLeftAndMaskedIdentifiers", func(t *testing.T) {
		st, err := s.Deps.Requests().Get(ctx, "salon", id)
		require.NoError(t, err)
		require.NotEmpty(t, st.DueDate)
		code, a := command(t, s.srv.URL, secret, "USTAFF", "status "+id)
		require.Equal(t, http.StatusOK, code)
		shown := string(a.Blocks)
		assert.Contains(t, shown, id)
		assert.Contains(t, shown, "pending approval")
		assert.Contains(t, shown, st.DueDate)
		assert.Regexp(t, `\d+ days left`, shown)
		assert.Contains(t, shown, slackmsg.Mask(email))
		assert.NotContains(t, shown, email)

		_, a = command(t, s.srv.URL, secret, "USTAFF", "status R-NOSUCH")
		assert.Contains(t, string(a.Blocks), "No request `R-NOSUCH` here")
		_, a = command(t, s.srv.URL, secret, "USTAFF", "status "+email)
		assert.NotContains(t, string(a.Blocks), email, "what was typed is not echoed")
	})

	t.Run("DueListsOpenRequestsDueThisWeekWithDaysLeft", func(t *testing.T) {
		done := s.Submit(domain.TypeErasure, connectors.Subject{Email: "nora.done@example.com"})
		s.message(done, posted)
		_, err := s.Deps.Requests().Decide(ctx, "salon", done, workflows.UpdateCancel, workflows.Decision{Actor: "test", Reason: "done"})
		require.NoError(t, err)
		require.Eventually(t, func() bool { // the listing reads the read model, which follows the workflow
			rows, err := s.Deps.Requests().List(ctx, "salon", requests.Filter{Status: domain.StatusCanceled})
			return err == nil && slices.ContainsFunc(rows, func(r requests.Summary) bool { return r.ID == done })
		}, time.Minute, 50*time.Millisecond)

		code, a := command(t, s.srv.URL, secret, "USTAFF", "due")
		require.Equal(t, http.StatusOK, code)
		assert.NotContains(t, string(a.Blocks), id, "a month away is not this week")

		// Three weeks and more later, the open request is due this week and the closed one not listed.
		st, err := s.Deps.Requests().Get(ctx, "salon", id)
		require.NoError(t, err)
		due, err := time.Parse(time.DateOnly, st.DueDate)
		require.NoError(t, err)
		_, a = command(t, s.later(due.Add(-3*24*time.Hour+time.Hour)), secret, "USTAFF", "due")
		assert.Contains(t, string(a.Blocks), id)
		assert.Contains(t, string(a.Blocks), "3 days left")
		assert.NotContains(t, string(a.Blocks), done, "closed requests are not due")
	})

	t.Run("BreachModalOpensABreachAsTheSlackUser", func(t *testing.T) {
		views := len(s.slack.Views())
		code, _ := command(t, s.srv.URL, secret, "UREPORTER", "breach")
		require.Equal(t, http.StatusOK, code)
		require.Len(t, s.slack.Views(), views+1, "the breach modal opens")
		raw := s.slack.Views()[views]
		require.NoError(t, slackmsg.CheckModal(raw))
		var view struct {
			CallbackID      string `json:"callback_id"`
			PrivateMetadata string `json:"private_metadata"`
		}
		require.NoError(t, json.Unmarshal(raw, &view))
		require.Equal(t, slackmsg.CallbackBreach, view.CallbackID)

		aware := time.Now().Add(-5 * time.Hour).Truncate(time.Second).UTC()
		submission := func(title string, at time.Time, metadata string) map[string]any {
			return breachSubmission("UREPORTER", title, at, metadata)
		}
		// A forged submission opens nothing.
		assert.Equal(t, http.StatusUnauthorized, s.post(submission("Forged", aware, view.PrivateMetadata), "not-the-signing-secret", time.Now()))
		// Bad input keeps the modal open with the error beside the field.
		errs := s.postView(submission("Laptop lost", time.Now().Add(time.Hour), view.PrivateMetadata))
		assert.Contains(t, errs[slackmsg.BlockBreachAware], "future")
		errs = s.postView(submission("  ", aware, view.PrivateMetadata))
		assert.NotEmpty(t, errs[slackmsg.BlockBreachTitle])
		rows, err := s.Deps.Breaches().List(ctx, "salon", "", 10)
		require.NoError(t, err)
		require.Empty(t, rows, "nothing opened from bad input")

		before := len(s.slack.Ephemerals())
		require.Empty(t, s.postView(submission("Laptop with the booking export lost", aware, view.PrivateMetadata)))
		eph := s.slack.Ephemerals()
		require.Len(t, eph, before+1, "the reporter is told the breach ID")
		m := regexp.MustCompile(`Breach (\S+) is open`).FindStringSubmatch(eph[before].Text)
		require.NotNil(t, m, eph[before].Text)
		assert.Equal(t, "UREPORTER", eph[before].User)
		assert.Equal(t, "CHELPDESK", eph[before].Channel)

		b, err := s.Deps.Breaches().Get(ctx, "salon", m[1])
		require.NoError(t, err)
		assert.Equal(t, "Laptop with the booking export lost", b.Title)
		assert.True(t, aware.Equal(b.AwareAt), "the clocks count from the time of awareness: %s", b.AwareAt)
		require.Eventually(t, func() bool {
			var actor string
			err := s.Deps.Store.Pool.QueryRow(ctx, `SELECT actor FROM audit_events WHERE breach_id = $1 AND action = 'breach.opened'`, m[1]).Scan(&actor)
			return err == nil && actor == "slack:UREPORTER"
		}, time.Minute, 50*time.Millisecond, "the Slack user opened the breach in the audit trail")
	})
}

// postView posts a signed view_submission and returns the errors Slack would show in the modal.
func (s *slackStack) postView(payload any) map[string]string {
	s.t.Helper()
	req, err := slackstandin.Interaction(s.srv.URL+"/slack/interactions", secret, payload, time.Now())
	require.NoError(s.t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	require.Equal(s.t, http.StatusOK, res.StatusCode)
	var out struct {
		Errors map[string]string `json:"errors"`
	}
	_ = json.NewDecoder(res.Body).Decode(&out)
	return out.Errors
}

// A command is served only for the workspace whose signing secret verified it: another
// tenant's Slack sees none of the salon's requests and cannot open a breach in its name.
func TestSlackPrivacyCommandServesOnlyItsWorkspace(t *testing.T) {
	const bakerySecret = "bakery-slack-signing-secret-0456"
	bakery := `
  - id: bakery
    name: Bakery Example
    regime: gdpr
    country: DE
    time_zone: Europe/Berlin
    contact_email: privacy@bakery.example
    policy: {manual_approval: []}
    slack:
      bot_token: {env: BAKERY_SLACK_BOT_TOKEN}
      signing_secret: {env: BAKERY_SLACK_SIGNING_SECRET}
      approval_channel: CBAKERY
      approvers: [{users: [UBAKER]}]`
	st := teststack.New(t, teststack.Options{Name: "slackcmd", Tenants: teststack.SlackSalon + bakery, Slack: true,
		Env: map[string]string{"BAKERY_SLACK_BOT_TOKEN": "xoxb-bakery-test", "BAKERY_SLACK_SIGNING_SECRET": bakerySecret}})
	st.RunAll()
	srv := httptest.NewServer(st.Handler())
	t.Cleanup(srv.Close)
	s := &slackStack{Stack: st, t: t, slack: st.Slack, srv: srv}
	ctx := context.Background()
	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: "nora.tenant@example.com"})
	s.message(id, posted)

	req, err := slackstandin.Command(srv.URL+"/slack/commands", secret, "USTAFF", "CHELPDESK", "/privacy", "status "+id, time.Now().Add(-6*time.Minute))
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "a stale timestamp is refused")

	_, a := command(t, srv.URL, secret, "USTAFF", "status "+id)
	assert.Contains(t, string(a.Blocks), "pending approval")
	_, a = command(t, srv.URL, bakerySecret, "UBAKER", "status "+id)
	assert.Contains(t, string(a.Blocks), "No request `"+id+"` here", "the bakery's Slack does not see the salon's request")

	rs, err := s.Deps.Requests().Get(ctx, "salon", id)
	require.NoError(t, err)
	due, err := time.Parse(time.DateOnly, rs.DueDate)
	require.NoError(t, err)
	later := s.later(due.Add(-2 * 24 * time.Hour))
	_, a = command(t, later, secret, "USTAFF", "due")
	assert.Contains(t, string(a.Blocks), id)
	_, a = command(t, later, bakerySecret, "UBAKER", "due")
	assert.NotContains(t, string(a.Blocks), id, "the bakery's Slack lists only the bakery's requests")

	// The bakery's Slack submits a breach modal naming the salon: nothing opens.
	forged := breachSubmission("UBAKER", "Not ours", time.Now().Add(-time.Hour), "salon CHELPDESK")
	req, err = slackstandin.Interaction(srv.URL+"/slack/interactions", bakerySecret, forged, time.Now())
	require.NoError(t, err)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var out struct {
		Errors map[string]string `json:"errors"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	res.Body.Close()
	assert.NotEmpty(t, out.Errors[slackmsg.BlockBreachTitle])
	for _, tenant := range []string{"salon", "bakery"} {
		rows, err := s.Deps.Breaches().List(ctx, tenant, "", 10)
		require.NoError(t, err)
		assert.Empty(t, rows, tenant)
	}
}

// later is the Slack app of the stack with its clock at now, for what is due.
func (s *slackStack) later(now time.Time) string {
	mux := http.NewServeMux()
	slackapp.Mount(mux, slackapp.Options{Requests: s.Deps.Requests(), Breaches: s.Deps.Breaches(), Store: s.Deps.Store, Tenants: s.Cfg.Tenants,
		APIURL: s.slack.URL(), Log: s.Log, Now: func() time.Time { return now }})
	srv := httptest.NewServer(mux)
	s.t.Cleanup(srv.Close)
	return srv.URL
}

// breachSubmission is user submitting the breach modal (metadata as opened) with a title and
// the time of awareness.
func breachSubmission(user, title string, aware time.Time, metadata string) map[string]any {
	return map[string]any{"type": "view_submission", "user": map[string]any{"id": user},
		"view": map[string]any{"callback_id": slackmsg.CallbackBreach, "private_metadata": metadata, "state": map[string]any{"values": map[string]any{
			slackmsg.BlockBreachTitle: map[string]any{slackmsg.ActionBreachTitle: map[string]any{"type": "plain_text_input", "value": title}},
			slackmsg.BlockBreachAware: map[string]any{slackmsg.ActionBreachAware: map[string]any{"type": "datetimepicker", "selected_date_time": aware.Unix()}},
		}}}}
}
