package e2e_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// A STOP texted to the salon's sender reaches Lethe as Twilio posts it (form-encoded, signed)
// and withdraws marketing_sms in the consent ledger, starting the objection; START grants it
// again; a request with a signature made with another token is refused and records nothing.
func TestStopReplyIsRecordedInTheConsentLedger(t *testing.T) {
	s := teststack.New(t, teststack.Options{Name: "e2e-sms-stop", SMS: true, Listen: true})
	s.RunAll()
	s.Serve(s.Handler())
	ctx := context.Background()
	hook := s.URL + "/webhooks/twilio/sms"
	s.Twilio.SetWebhook(teststack.TwilioSender, hook)
	const phone = "+4917612345678"
	hash := crypto.SubjectHash(s.Cfg.Secrets.SigningKey.Value(), "salon", "", phone, "")
	ledger := func() []string {
		rows, err := s.Deps.Store.Pool.Query(ctx, `SELECT purpose || ' ' || granted || ' ' || source FROM consent_ledger WHERE tenant_id = 'salon' AND subject_hash = $1 ORDER BY id`, hash)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v string
			require.NoError(t, rows.Scan(&v))
			out = append(out, v)
		}
		require.NoError(t, rows.Err())
		return out
	}

	// Signed with a token that is not the account's: refused before anything is read.
	form := url.Values{"MessageSid": {"SM00000000000000000000000000000001"}, "AccountSid": {teststack.TwilioAccount},
		"From": {phone}, "To": {teststack.TwilioSender}, "Body": {"STOP"}}
	require.Equal(t, http.StatusForbidden, postForged(t, hook, form), "a forged STOP")
	require.Empty(t, ledger(), "a forged STOP was recorded")

	status, err := s.Twilio.Receive(teststack.TwilioAccount, phone, teststack.TwilioSender, "Stop")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "Twilio's STOP webhook")
	require.Equal(t, []string{"marketing_sms false twilio"}, ledger())
	var objection string
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT id FROM requests WHERE tenant_id = 'salon' AND type = 'objection'`).Scan(&objection))
	st := s.Await(objection)
	require.Equal(t, "completed", st.Status, "the objection the STOP started")
	require.Equal(t, []string{"marketing_sms false twilio", "marketing false objection"}, ledger(), "the STOP and its objection")

	status, err = s.Twilio.Receive(teststack.TwilioAccount, phone, teststack.TwilioSender, "START")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "Twilio's START webhook")
	require.Equal(t, []string{"marketing_sms false twilio", "marketing false objection", "marketing_sms true twilio"}, ledger())

	status, err = s.Twilio.Receive(teststack.TwilioAccount, phone, teststack.TwilioSender, "See you Friday")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "an ordinary reply")
	require.Len(t, ledger(), 3, "an ordinary reply changed consent")
}

// postForged posts form to a Twilio webhook of Lethe's signed with a token that is not the
// account's, and returns the status Lethe answered.
func postForged(t *testing.T, hook string, form url.Values) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, hook, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sms.Signature("not-the-auth-token", hook, form))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}
