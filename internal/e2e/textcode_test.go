package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// textSalon is the salon sending its own texts through the sms instance, with an intake token
// for the public API.
var textSalon = teststack.Salon + `
    sms: sms
    tokens: [{role: intake, env: SALON_INTAKE_TOKEN}]`

const intakeToken = "salon-intake-token-for-text-codes"

// textStack is the whole stack with the Twilio stand-in behind the salon's sms instance, and
// the HTTP surface served for the public API.
type textStack struct {
	*stack
	api string
}

func newTextStack(t *testing.T) *textStack {
	t.Helper()
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e-text", SMS: true, Tenants: textSalon,
		Env: map[string]string{"SALON_INTAKE_TOKEN": intakeToken}}), t: t}
	s.RunAll()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &textStack{stack: s, api: srv.URL}
}

// call makes one public API call as the salon's intake and returns the status and JSON body.
func (s *textStack) call(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		raw, err = json.Marshal(body)
		require.NoError(s.t, err)
	}
	req, err := http.NewRequest(method, s.api+path, bytes.NewReader(raw))
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+intakeToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

var codeText = regexp.MustCompile(`^Salon Example: your verification code is (\d{6})\. It expires in 15 minutes\. If you did not ask for it, ignore this text\.$`)

// texted waits for the (n+1)th code text the Twilio stand-in took for phone from the salon's
// sender, and for its code to be stored, and returns the code and the text's SID.
func (s *textStack) texted(phone string, n int) (code, sid string) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		var codes []string
		var sids []string
		for _, m := range s.Twilio.Messages(phone) {
			if m.From == teststack.TwilioSender && m.To == phone && strings.Contains(m.Body, "verification code") {
				match := codeText.FindStringSubmatch(m.Body)
				require.NotNil(s.t, match, "the code text reads %q", m.Body)
				codes, sids = append(codes, match[1]), append(sids, m.SID)
			}
		}
		if len(codes) <= n {
			return false
		}
		code, sid = codes[n], sids[n]
		var channel string
		err := s.Deps.Store.Pool.QueryRow(context.Background(), `SELECT channel FROM verification_codes WHERE request_id IN
			(SELECT request_id FROM request_subjects WHERE phone = $1)`, phone).Scan(&channel)
		return err == nil && channel == "sms"
	}, time.Minute, 50*time.Millisecond, "no code texted to the subject")
	return code, sid
}

// proofs are the identifiers proven for request id, by method.
func (s *textStack) proofs(id string) map[string]string {
	s.t.Helper()
	_, raw, err := s.Deps.Store.Subjects().Given(context.Background(), "salon", id)
	require.NoError(s.t, err)
	var ps map[string]struct{ Method string }
	require.NoError(s.t, json.Unmarshal(raw, &ps))
	out := map[string]string{}
	for k, p := range ps {
		out[k] = p.Method
	}
	return out
}

// auditOf is request id's audit trail; no detail of it holds phone or code.
func (s *textStack) auditOf(id, phone string, codes ...string) []store.Event {
	s.t.Helper()
	events, err := s.Deps.Store.Audit().List(context.Background(), store.AuditFilter{RequestID: id, Limit: 1000})
	require.NoError(s.t, err)
	for _, e := range events {
		detail := fmt.Sprint(e.Detail)
		assert.NotContains(s.t, detail, phone, "%s names the phone number", e.Action)
		assert.NotContains(s.t, detail, strings.TrimPrefix(phone, "+"), "%s names the phone number", e.Action)
		for _, c := range codes {
			assert.NotContains(s.t, detail, c, "%s holds the code", e.Action)
		}
	}
	return events
}

// A request with only a phone number gets its code by text from the salon's sender (after
// Twilio's 429 is waited out as its Retry-After says); the code, checked through the public
// API, proves the phone number by sms_code and nothing else, and the request moves on. The
// audit trail records the send with channel and Twilio's SID, never the number or the code.
func TestPhoneOnlyRequestIsVerifiedByTextEndToEnd(t *testing.T) {
	s := newTextStack(t)
	phone := demo.ClearCustomerPhone
	// The sms runner checks the account once as it starts; the throttle is for the code's send.
	require.Eventually(t, func() bool { return s.Twilio.Calls("list") > 0 }, time.Minute, 20*time.Millisecond, "the sms runner never started")
	s.Twilio.Throttle(1, time.Second) // the first send is refused with 429, Retry-After: 1

	status, out := s.call(http.MethodPost, "/v1/requests", map[string]any{"type": "access", "subject": map[string]any{"phone": phone}})
	require.Equal(t, http.StatusCreated, status, "%v", out)
	id := out["request_id"].(string)
	s.awaitStatus(id, domain.StatusIdentityPending)
	code, sid := s.texted(phone, 0)
	assert.Equal(t, 2, s.Twilio.Calls("create"), "the throttled send, then the one that went")
	assert.Empty(t, s.Mailbox.Messages(""), "no email: the request has no address")

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	status, out = s.call(http.MethodPost, "/v1/requests/"+id+"/verify", map[string]any{"code": wrong})
	assert.Equal(t, http.StatusUnprocessableEntity, status, "%v", out)
	status, out = s.call(http.MethodPost, "/v1/requests/"+id+"/verify", map[string]any{"code": code})
	require.Equal(t, http.StatusOK, status, "%v", out)
	assert.NotEmpty(t, out["identity_verified_at"])

	assert.Equal(t, map[string]string{"phone": "sms_code"}, s.proofs(id), "the text proves the phone number, and only it")
	st := s.Await(id)
	require.Equal(t, domain.StatusCompleted, st.Status, "connectors: %+v", st.Connectors)
	var notes []string
	for _, step := range st.Steps {
		notes = append(notes, step.Note)
	}
	assert.Contains(t, notes, "identity verified by sms_code")

	events := s.auditOf(id, phone, code)
	var sent []map[string]any
	for _, e := range events {
		if e.Action == "subject.notified" && e.Detail["kind"] == "verification_code" {
			sent = append(sent, e.Detail)
		}
	}
	require.Equal(t, []map[string]any{{"kind": "verification_code", "sent": true, "channel": "sms", "message_id": sid}}, sent,
		"the send, with channel and Twilio's SID only")
	s.record(id, "request_access_sms_code")
}

// A code sent by text replaces the emailed one: the email code no longer works, and the text
// code proves the phone number, not the email address. A number that replied STOP is refused
// with Twilio's code and the code sent before still works; an email asked for where there is
// none is refused too.
func TestTextCodeReplacesTheEmailedOneEndToEnd(t *testing.T) {
	s := newTextStack(t)
	email, phone := demo.ClearCustomerEmail, demo.ClearCustomerPhone

	status, out := s.call(http.MethodPost, "/v1/requests", map[string]any{"type": "access", "subject": map[string]any{"email": email, "phone": phone}})
	require.Equal(t, http.StatusCreated, status, "%v", out)
	id := out["request_id"].(string)
	s.awaitStatus(id, domain.StatusIdentityPending)
	emailed := s.code(email, id) // email and phone: the first code is emailed, as before

	status, out = s.call(http.MethodPost, "/v1/requests/"+id+"/verification-code", map[string]any{"channel": "sms"})
	require.Equal(t, http.StatusAccepted, status, "%v", out)
	assert.Equal(t, "sms", out["channel"])
	texted, sid := s.texted(phone, 0)

	if emailed != texted {
		status, out = s.call(http.MethodPost, "/v1/requests/"+id+"/verify", map[string]any{"code": emailed})
		assert.Equal(t, http.StatusUnprocessableEntity, status, "the emailed code after a text code: %v", out)
		assert.Equal(t, "wrong_code", out["code"])
	}
	status, out = s.call(http.MethodPost, "/v1/requests/"+id+"/verify", map[string]any{"code": texted})
	require.Equal(t, http.StatusOK, status, "%v", out)
	assert.Equal(t, map[string]string{"phone": "sms_code"}, s.proofs(id), "a text code never proves the email address")
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
	s.record(id, "request_access_code_texted")
	var resent []map[string]any
	for _, e := range s.auditOf(id, phone, emailed, texted) {
		assert.NotContains(t, fmt.Sprint(e.Detail), email, "%s names the email address", e.Action)
		if e.Action == "subject.verification_code_sent" {
			resent = append(resent, e.Detail)
		}
	}
	require.Len(t, resent, 1)
	assert.Equal(t, "sms", resent[0]["channel"])
	assert.Equal(t, sid, resent[0]["message_id"])

	// A phone-only request whose number then replies STOP to the salon's sender.
	stopped := "+4915112345667"
	status, out = s.call(http.MethodPost, "/v1/requests", map[string]any{"type": "access", "subject": map[string]any{"phone": stopped}})
	require.Equal(t, http.StatusCreated, status, "%v", out)
	other := out["request_id"].(string)
	s.awaitStatus(other, domain.StatusIdentityPending)
	first, _ := s.texted(stopped, 0)
	_, err := s.Twilio.Receive(teststack.TwilioAccount, stopped, teststack.TwilioSender, "STOP")
	require.NoError(t, err)
	status, out = s.call(http.MethodPost, "/v1/requests/"+other+"/verification-code", map[string]any{"channel": "sms"})
	assert.Equal(t, http.StatusUnprocessableEntity, status, "%v", out)
	assert.Equal(t, "text_refused", out["code"])
	assert.Contains(t, out["message"], "21610", "the message names Twilio's code")
	assert.NotContains(t, out["message"], strings.TrimPrefix(stopped, "+"), "nor the number")
	status, out = s.call(http.MethodPost, "/v1/requests/"+other+"/verification-code", map[string]any{"channel": "email"})
	assert.Equal(t, http.StatusUnprocessableEntity, status, "%v", out)
	assert.Equal(t, "no_email", out["code"])
	status, out = s.call(http.MethodPost, "/v1/requests/"+other+"/verify", map[string]any{"code": first})
	require.Equal(t, http.StatusOK, status, "the code texted before the refusal still works: %v", out)
	assert.Equal(t, map[string]string{"phone": "sms_code"}, s.proofs(other))
}
