package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/intake"
)

// What Twilio's webhook refuses never reaches the consent ledger (the whole path, recording
// included, is internal/e2e TestStopReplyIsRecordedInTheConsentLedger).
func TestTwilioWebhookRefusals(t *testing.T) {
	const account, token, sender = "AC0123456789abcdef0123456789abcdef", "twilio-token", "+15005550006"
	cfg := sms.NewConfig()
	cfg.AccountSID, cfg.AuthTokenEnv, cfg.Senders = account, "X", map[string]sms.Sender{"salon": {From: sender}}
	h := &api.TwilioWebhook{Instances: map[string]api.TwilioInstance{"sms": {Config: cfg, Token: token}}, PublicURL: "https://privacy.example.com/",
		Log: slog.New(slog.DiscardHandler), Record: func(context.Context, intake.Consent) error {
			t.Error("a refused webhook was recorded")
			return nil
		}}
	mux := http.NewServeMux()
	api.MountTwilio(mux, h)
	form := func(to, account string) url.Values {
		return url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "AccountSid": {account}, "From": {"+4917612345678"}, "To": {to}, "Body": {"STOP"}}
	}
	for _, c := range []struct {
		name, path, contentType, signWith string
		form                              url.Values
		want                              int
	}{
		{"unknown instance", "/webhooks/twilio/nope", "application/x-www-form-urlencoded", token, form(sender, account), 404},
		{"json body", "/webhooks/twilio/sms", "application/json", token, form(sender, account), 415},
		{"wrong token", "/webhooks/twilio/sms", "application/x-www-form-urlencoded", "another-token", form(sender, account), 403},
		{"no signature", "/webhooks/twilio/sms", "application/x-www-form-urlencoded", "", form(sender, account), 403},
		{"another account", "/webhooks/twilio/sms", "application/x-www-form-urlencoded", token, form(sender, "ACffffffffffffffffffffffffffffffff"), 403},
		{"not a sender of the instance", "/webhooks/twilio/sms", "application/x-www-form-urlencoded", token, form("+15005550001", account), 422},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.form.Encode()))
			req.Header.Set("Content-Type", c.contentType)
			if c.signWith != "" {
				req.Header.Set("X-Twilio-Signature", sms.Signature(c.signWith, "https://privacy.example.com"+c.path, c.form))
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, c.want)
			}
		})
	}
}
