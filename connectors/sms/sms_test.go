package sms_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/connectortest"
	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"
)

const (
	account     = "AC0123456789abcdef0123456789abcdef"
	token       = "stand-in-auth-token"
	tokenEnv    = "LETHE_TEST_TWILIO_TOKEN"
	salonSender = "+15005550006"
	otherSender = "+15005550001"
)

// open starts a stand-in and an sms connector on it serving tenant "conformance" (and the
// salon) from salonSender, and tenant "other" from otherSender.
func open(t *testing.T, extra string) (*sms.Connector, *twiliostandin.Server) {
	t.Helper()
	srv := twiliostandin.New(account, token)
	t.Cleanup(srv.Stop)
	t.Setenv(tokenEnv, token)
	cfg := fmt.Sprintf(`
account_sid: %s
auth_token_env: %s
base_url: %s
page_size: 50
senders:
  conformance: {from: "%s"}
  salon: {from: "%s"}
  other: {from: "%s"}
%s`, account, tokenEnv, srv.URL(), salonSender, salonSender, otherSender, extra)
	c, err := connectors.Open(sms.Name, []byte(cfg))
	if err != nil {
		t.Fatalf("opening the sms connector: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*sms.Connector), srv
}

var phones struct {
	sync.Mutex
	n int
}

// newPhone is a number no other subject of the test run has.
func newPhone() string {
	phones.Lock()
	defer phones.Unlock()
	phones.n++
	return fmt.Sprintf("+1555%03d%04d", rand.IntN(1000), phones.n)
}

// seed gives a subject two reminders from the salon and one reply to it, and one text from
// another tenant's sender, which the salon's requests must never touch.
func seed(srv *twiliostandin.Server, n int) connectors.Subject {
	phone := newPhone()
	at := time.Now().Add(-48 * time.Hour)
	for i := range n {
		srv.Add(twiliostandin.Message{From: salonSender, To: phone, Body: fmt.Sprintf("Reminder %d: your booking tomorrow at 10:00", i), Created: at.Add(time.Duration(i) * time.Second)})
	}
	srv.Add(twiliostandin.Message{From: phone, To: salonSender, Body: "Thanks, see you", Direction: "inbound", Status: "received", Created: at.Add(time.Hour)})
	srv.Add(twiliostandin.Message{From: otherSender, To: phone, Body: "Another business", Created: at})
	return connectors.Subject{Phone: phone, Email: "someone@example.com"}
}

// salonTexts counts the texts between the subject and the salon's sender.
func salonTexts(srv *twiliostandin.Server, s connectors.Subject) int {
	n := 0
	for _, m := range srv.Messages(s.Phone) {
		if m.From == salonSender || m.To == salonSender {
			n++
		}
	}
	return n
}

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Features{
		Capabilities:    sms.Capabilities,
		LargeResultRows: 300,
		InvalidParams:   map[string]any{"no_such_option": true},
		NotifyChannel:   connectors.ChannelSMS,
	}, func(t *testing.T) connectortest.Fixture {
		c, srv := open(t, "")
		return connectortest.Fixture{
			Connector:       c,
			Seed:            func(t *testing.T) connectors.Subject { return seed(srv, 2) },
			SeedLarge:       func(t *testing.T, n int) connectors.Subject { return seed(srv, n) },
			HasPersonalData: func(t *testing.T, s connectors.Subject) bool { return salonTexts(srv, s) > 0 },
			Disconnect:      func(t *testing.T) { srv.Stop() },
		}
	})
}

func task(tenant, key string, s connectors.Subject) connectors.Task {
	return connectors.Task{Key: key, RequestID: key, TenantID: tenant, Subject: s}
}

func TestEraseDeletesOnlyTheTenantsTextsAndASecondEraseIsAlreadyApplied(t *testing.T) {
	c, srv := open(t, "")
	ctx := context.Background()
	s := seed(srv, 2)
	first, err := c.Erase(ctx, task("salon", "r1:sms:erase", s))
	if err != nil || first.AlreadyApplied || first.Deleted[sms.Table] != 3 {
		t.Fatalf("first erase = %+v, %v; want 3 texts deleted", first, err)
	}
	if left := srv.Messages(s.Phone); len(left) != 1 || left[0].From != otherSender {
		t.Fatalf("after the salon's erase the stand-in holds %+v; want only the other tenant's text", left)
	}
	second, err := c.Erase(ctx, task("salon", "r1:sms:erase", s))
	if err != nil || !second.AlreadyApplied || second.Deleted[sms.Table] != 3 {
		t.Fatalf("second erase = %+v, %v; want already applied with the first run's counts", second, err)
	}
	// A new process (no memory of the key) finds nothing left to delete, and succeeds.
	fresh, _ := open(t, "")
	if _, err := fresh.Erase(ctx, task("salon", "r1:sms:erase", s)); err != nil {
		t.Fatalf("erase again from a new connector: %v", err)
	}
}

func TestRateLimitIsRetriedAfterRetryAfter(t *testing.T) {
	c, srv := open(t, "")
	ctx := context.Background()
	s := seed(srv, 1)
	srv.Throttle(1, 7*time.Second)
	_, err := c.Erase(ctx, task("salon", "r2:sms:erase", s))
	if err == nil || connectors.IsPermanent(err) {
		t.Fatalf("erase while throttled: want a retryable error, got %v", err)
	}
	if d, ok := connectors.RetryDelay(err); !ok || d != 7*time.Second {
		t.Fatalf("erase while throttled asks to wait %v (%v); want Twilio's Retry-After, 7s", d, ok)
	}
	srv.Unavailable(1, 3*time.Second)
	_, err = c.Erase(ctx, task("salon", "r2:sms:erase", s))
	if d, ok := connectors.RetryDelay(err); connectors.IsPermanent(err) || !ok || d != 3*time.Second {
		t.Fatalf("erase during an outage = %v (wait %v); want retryable after 3s", err, d)
	}
	if res, err := c.Erase(ctx, task("salon", "r2:sms:erase", s)); err != nil || res.Deleted[sms.Table] != 2 {
		t.Fatalf("erase once Twilio answers = %+v, %v", res, err)
	}
}

func TestAuthFailureIsPermanentAndNamesTheSetting(t *testing.T) {
	c, srv := open(t, "")
	s := seed(srv, 1)
	t.Setenv(tokenEnv, "not-the-token")
	wrong, err := connectors.Open(sms.Name, []byte(fmt.Sprintf("{account_sid: %s, auth_token_env: %s, base_url: %q, senders: {salon: {from: %q}}}", account, tokenEnv, srv.URL(), salonSender)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.(connectors.Eraser).Erase(context.Background(), task("salon", "r3:sms:erase", s))
	if !connectors.IsPermanent(err) {
		t.Fatalf("erase with a wrong token: want a permanent error, got %v", err)
	}
	for _, want := range []string{"20003", "account_sid", "auth_token_env (" + tokenEnv + ")"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("auth failure %q does not name %q", err, want)
		}
	}
	if err := wrong.Check(context.Background()); !connectors.IsPermanent(err) {
		t.Errorf("check with a wrong token: want a permanent error, got %v", err)
	}
	if err := c.Check(context.Background()); err != nil {
		t.Errorf("check with the right token: %v", err)
	}
}

func TestEraseWaitsForTextsStillInProgress(t *testing.T) {
	c, srv := open(t, "")
	now := time.Now()
	srv.Now = func() time.Time { return now }
	srv.Delivery = time.Minute
	ctx := context.Background()
	s := connectors.Subject{Phone: newPhone()}
	tk := task("salon", "r4:sms:notify", s)
	tk.Params = map[string]any{"channel": "sms", "body": "Your code is 123456"}
	sent, err := c.Notify(ctx, tk)
	if err != nil || sent.MessageID == "" {
		t.Fatalf("notify = %+v, %v", sent, err)
	}
	if m := srv.Messages(s.Phone); len(m) != 1 || m[0].From != salonSender || m[0].Body != "Your code is 123456" {
		t.Fatalf("the stand-in holds %+v; want the text from the salon's sender", m)
	}
	_, err = c.Erase(ctx, task("salon", "r4:sms:erase", s))
	if d, ok := connectors.RetryDelay(err); connectors.IsPermanent(err) || !ok || d != time.Minute {
		t.Fatalf("erase of a queued text = %v (wait %v); want retryable after a minute, as Twilio refuses (20009)", err, d)
	}
	if len(srv.Messages(s.Phone)) != 1 {
		t.Fatal("the refused delete removed the text")
	}
	now = now.Add(2 * time.Minute) // delivered
	if res, err := c.Erase(ctx, task("salon", "r4:sms:erase", s)); err != nil || res.Deleted[sms.Table] != 1 {
		t.Fatalf("erase once delivered = %+v, %v", res, err)
	}
}

func TestNotifyRefusals(t *testing.T) {
	c, srv := open(t, "")
	ctx := context.Background()
	phone := newPhone()
	for name, tc := range map[string]struct {
		tenant string
		s      connectors.Subject
		params map[string]any
		want   string
	}{
		"email channel":  {"salon", connectors.Subject{Phone: phone}, map[string]any{"channel": "email", "body": "x"}, `channel "sms" only`},
		"no phone":       {"salon", connectors.Subject{Email: "a@example.com"}, map[string]any{"channel": "sms", "body": "x"}, "no phone number"},
		"template only":  {"salon", connectors.Subject{Phone: phone}, map[string]any{"channel": "sms", "template": "code"}, "needs a body"},
		"too long":       {"salon", connectors.Subject{Phone: phone}, map[string]any{"channel": "sms", "body": strings.Repeat("x", 1601)}, "1600"},
		"unknown tenant": {"nobody", connectors.Subject{Phone: phone}, map[string]any{"channel": "sms", "body": "x"}, "senders.nobody"},
		"invalid number": {"salon", connectors.Subject{Phone: "0123"}, map[string]any{"channel": "sms", "body": "x"}, "21211"},
		"replied stop":   {"salon", connectors.Subject{Phone: phone}, map[string]any{"channel": "sms", "body": "x"}, "21610"},
		"another sender": {"other", connectors.Subject{Phone: phone}, map[string]any{"channel": "sms", "body": "x"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := srv.Receive(account, phone, salonSender, " stop "); err != nil {
				t.Fatal(err)
			}
			tk := task(tc.tenant, "notify:"+name, tc.s)
			tk.Params = tc.params
			_, err := c.Notify(ctx, tk)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a STOP to the salon stopped another sender's text: %v", err)
				}
				return
			}
			if !connectors.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("notify = %v; want a permanent error naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), phone) || strings.Contains(err.Error(), "0123") {
				t.Fatalf("the error %q quotes the phone number", err)
			}
		})
	}
}

func TestSignatureMatchesTwiliosExampleAndOpenSSL(t *testing.T) {
	// The worked example of Twilio's webhook security documentation.
	form := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"}, "From": {"+12349013030"}, "To": {"+18005551212"}}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got := sms.Signature("12345", u, form); got != "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Fatalf("signature of Twilio's example = %s", got)
	}
	if !sms.ValidSignature("12345", u, form, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=") || sms.ValidSignature("12346", u, form, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=") {
		t.Fatal("ValidSignature does not tell the right token from a wrong one")
	}
	// An independent implementation: openssl over the documented string.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	form = url.Values{"Body": {"STOP"}, "From": {"+15551230000"}, "To": {salonSender}, "AccountSid": {account}}
	signed := "http://lethe.test/webhooks/twilio/sms" + "AccountSid" + account + "Body" + "STOP" + "From" + "+15551230000" + "To" + salonSender
	cmd := exec.Command("sh", "-c", `printf %s "$0" | openssl dgst -sha1 -hmac "$1" -binary | openssl base64`, signed, token)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	if got, want := sms.Signature(token, "http://lethe.test/webhooks/twilio/sms", form), strings.TrimSpace(string(out)); got != want {
		t.Fatalf("signature %s, openssl %s", got, want)
	}
}

func TestReplyOf(t *testing.T) {
	for body, want := range map[string]sms.Reply{"STOP": sms.ReplyOptOut, " unsubscribe ": sms.ReplyOptOut, "Quit": sms.ReplyOptOut,
		"START": sms.ReplyOptIn, "unstop": sms.ReplyOptIn, "stop it please": sms.ReplyOther, "HELP": sms.ReplyOther} {
		if got := sms.ReplyOf(url.Values{"Body": {body}}); got != want {
			t.Errorf("ReplyOf(%q) = %v, want %v", body, got, want)
		}
	}
	if got := sms.ReplyOf(url.Values{"Body": {"ARRET"}, "OptOutType": {"STOP"}}); got != sms.ReplyOptOut {
		t.Errorf("OptOutType STOP with a service keyword = %v, want opt-out", got)
	}
}

func TestConfigRefusals(t *testing.T) {
	t.Setenv(tokenEnv, token)
	for yaml, want := range map[string]string{
		`{account_sid: AB12, auth_token_env: X, senders: {salon: {from: "+15005550006"}}}`:                                                                    "account_sid",
		`{account_sid: ` + account + `, senders: {salon: {from: "+15005550006"}}}`:                                                                            "auth_token_env",
		`{account_sid: ` + account + `, auth_token_env: X}`:                                                                                                   "senders",
		`{account_sid: ` + account + `, auth_token_env: X, senders: {salon: {from: "5550006"}}}`:                                                              "senders.salon.from",
		`{account_sid: ` + account + `, auth_token_env: X, senders: {salon: {from: "+15005550006", messaging_service_sid: "MG1"}}}`:                           "exactly one",
		`{account_sid: ` + account + `, auth_token_env: X, base_url: "ftp://x", senders: {salon: {from: "+15005550006"}}}`:                                    "base_url",
		`{account_sid: ` + account + `, auth_token_env: LETHE_TEST_UNSET_TOKEN, senders: {salon: {from: "+15005550006"}}}`:                                    "LETHE_TEST_UNSET_TOKEN is not set",
		`{account_sid: ` + account + `, auth_token_env: X, page_size: 5000, senders: {salon: {messaging_service_sid: "MG0123456789abcdef0123456789abcdef"}}}`: "page_size",
	} {
		t.Setenv("X", "x")
		_, err := connectors.Open(sms.Name, []byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s) = %v; want an error naming %q", yaml, err, want)
		}
	}
}
