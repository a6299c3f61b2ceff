package api_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// POST /v1/breaches/{id}/subjects with a CSV upload: refused before the assessment is high, an
// upload with bad rows lists nobody and names each bad line (never its values), a good one
// notifies each person once however often listed, the breach counts what was sent, and
// Mailgun's delivered webhook for one person's copy counts it delivered.
func (s *stack) testBreachSubjects(t *testing.T) {
	id := "B-" + testenv.Suffix()
	open := map[string]any{"breach_id": id, "title": "Leaked list", "aware_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		"content": map[string]any{"nature": "A customer list was emailed to the wrong address.", "contact_point": "dpo@salon.example",
			"consequences": "Phishing mails in your name are possible.", "measures": "The recipient deleted it; we check every list now."}}
	require.Equal(t, http.StatusCreated, s.call(t, "", http.MethodPost, "/v1/breaches", tok("salon", "dpo"), open).status)
	path := "/v1/breaches/" + id + "/subjects"
	good := []byte("email,phone,name\nana@example.com,+49 30 1234,Ana\nben@example.com,,\nANA@example.com\ncleo@example.com\n")
	r := s.send(t, "", http.MethodPost, path, tok("salon", "dpo"), "text/csv", good)
	assert.Equal(t, http.StatusConflict, r.status, "not assessed high yet: %s", r.body)
	assert.Equal(t, http.StatusForbidden, s.send(t, "", http.MethodPost, path, tok("salon", "support"), "text/csv", good).status)
	r = s.call(t, "", http.MethodPost, "/v1/breaches/"+id+"/assessment", tok("salon", "dpo"), map[string]any{"risk": "high", "rationale": "health data"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)

	// U+0000 deep in a finder's criteria: PostgreSQL could store it nowhere, so it is refused
	// here rather than retried for ever by the workflow.
	r = s.call(t, "", http.MethodPost, path, tok("salon", "dpo"), map[string]any{
		"find": []any{map[string]any{"finder": "customers_with_health_notes", "params": map[string]any{"table": "notes\x00"}}}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	assert.Equal(t, "invalid_text", r.json(t)["code"])
	assert.Contains(t, r.json(t)["message"], "U+0000")

	bad := []byte("email\nana@example.com\nnot-an-address\ndan@example.com,x1,Dan,extra\n,+44 7700 900123\n")
	r = s.send(t, "", http.MethodPost, path, tok("salon", "dpo"), "text/csv", bad)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	msg := r.json(t)["message"].(string)
	assert.Contains(t, msg, "line 3: the email is not an email address")
	assert.Contains(t, msg, "line 4: 4 fields")
	assert.Contains(t, msg, "line 5: the email is empty, and the tenant sends no texts", "the salon has no tenants[].sms")
	assert.NotContains(t, msg, "not-an-address")
	assert.NotContains(t, msg, "7700")

	r = s.send(t, "", http.MethodPost, path+"?actor=dana", tok("salon", "dpo"), "text/csv", good)
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	var st map[string]any
	for deadline := time.Now().Add(time.Minute); ; {
		r = s.call(t, "", http.MethodGet, "/v1/breaches/"+id, tok("salon", "dpo"), nil)
		st = r.json(t)
		if ns, _ := st["notices"].([]any); len(ns) == 1 && ns[0].(map[string]any)["status"] != "running" {
			break
		}
		require.False(t, time.Now().After(deadline), "the notice run never ended: %s", r.body)
		time.Sleep(50 * time.Millisecond) // polling the register, not waiting out a timer
	}
	assert.Equal(t, "done", st["notices"].([]any)[0].(map[string]any)["status"])
	subjects := st["subjects"].(map[string]any)
	assert.EqualValues(t, 3, subjects["recipients"])
	assert.EqualValues(t, 3, subjects["sent"])
	counts := s.Standin.Count()
	for _, who := range []string{"ana@example.com", "ben@example.com", "cleo@example.com"} {
		assert.Equal(t, 1, counts[who], who)
	}
	assert.Zero(t, s.Standin.Exposed())

	var seq string
	for _, c := range s.Standin.Copies() {
		if c.To == "ben@example.com" {
			seq = c.Variables["lethe-recipient"]
		}
	}
	hook := httptest.NewServer(&api.MailgunWebhook{SigningKey: webhookKey, Pool: s.Deps.Store.Pool, Log: s.Log})
	defer hook.Close()
	stamp, token := fmt.Sprint(time.Now().Unix()), "tok-"+testenv.Suffix()
	m := hmac.New(sha256.New, []byte(webhookKey))
	m.Write([]byte(stamp + token))
	body := fmt.Sprintf(`{"signature":{"timestamp":%q,"token":%q,"signature":%q},"event-data":{"event":"delivered","id":"ev-%s",
		"timestamp":%s,"tags":["breach_notification"],"user-variables":{"lethe-breach-id":%q,"lethe-recipient":%q},
		"message":{"headers":{"message-id":"<m@mg>"}}}}`, stamp, token, hex.EncodeToString(m.Sum(nil)), token, stamp, id, seq)
	res, err := http.Post(hook.URL, "application/json", bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	r = s.call(t, "", http.MethodGet, "/v1/breaches/"+id, tok("salon", "dpo"), nil)
	assert.EqualValues(t, 1, r.json(t)["subjects"].(map[string]any)["delivered"], "%s", r.body)
}
