package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/intake"
)

// What Twilio's webhook refuses never reaches the consent ledger (the whole path, recording
// included, is internal/e2e TestStopReplyIsRecordedInTheConsentLedger); the status callback of
// a breach notice's text records only a signed final status, for the text its URL names.
func TestTwilioWebhookRefusals(t *testing.T) {
	const account, token, sender = "AC0123456789abcdef0123456789abcdef", "twilio-token", "+15005550006"
	cfg := sms.NewConfig()
	cfg.AccountSID, cfg.AuthTokenEnv, cfg.Senders = account, "X", map[string]sms.Sender{"salon": {From: sender}}
	var delivered []string
	h := &api.TwilioWebhook{Instances: map[string]api.TwilioInstance{"sms": {Config: cfg, Token: token}}, PublicURL: "https://privacy.example.com/",
		Log: slog.New(slog.DiscardHandler), Record: func(context.Context, intake.Consent) error {
			t.Error("a refused webhook was recorded")
			return nil
		}, Delivered: func(_ context.Context, tenants []string, breach string, seq int64, sid, event string, _ time.Time) error {
			delivered = append(delivered, fmt.Sprint(tenants, " ", breach, " ", seq, " ", sid, " ", event))
			return nil
		}}
	mux := http.NewServeMux()
	api.MountTwilio(mux, h)
	form := func(to, account string) url.Values {
		return url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "AccountSid": {account}, "From": {"+4917612345678"}, "To": {to}, "Body": {"STOP"}}
	}
	status := strings.TrimPrefix(activities.NoticeTextCallback("https://privacy.example.com", "sms", "B-1", 7), "https://privacy.example.com")
	statusForm := func(st string) url.Values {
		return url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "AccountSid": {account}, "MessageStatus": {st}}
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
		{"status, wrong token", status, "application/x-www-form-urlencoded", "another-token", statusForm("delivered"), 403},
		{"status, another text's URL", strings.Replace(status, "seq=7", "seq=8", 1), "application/x-www-form-urlencoded", "", statusForm("delivered"), 403},
		{"status, not final", status, "application/x-www-form-urlencoded", token, statusForm("sent"), 204},
		{"status, delivered", status, "application/x-www-form-urlencoded", token, statusForm("delivered"), 204},
		{"status, undelivered", status, "application/x-www-form-urlencoded", token, statusForm("undelivered"), 204},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.form.Encode()))
			req.Header.Set("Content-Type", c.contentType)
			if c.name == "status, another text's URL" {
				// Signed for seq 7, posted to seq 8: the signature covers the query.
				req.Header.Set("X-Twilio-Signature", sms.Signature(token, "https://privacy.example.com"+status, c.form))
			}
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
	if want := []string{"[salon] B-1 7 SM0123456789abcdef0123456789abcdef delivered", "[salon] B-1 7 SM0123456789abcdef0123456789abcdef failed"}; !slices.Equal(delivered, want) {
		t.Errorf("deliveries recorded %q, want %q", delivered, want)
	}
}
