package mail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/mail"
)

// FuzzParseWebhook: the webhook route is open to the internet and parses before it verifies.
// Any body is refused with a clear error or yields an event the audit trail can store: a
// timestamp PostgreSQL can hold, no NUL byte (PostgreSQL text refuses it, so Mailgun would
// retry for ever), a known notice kind or none.
func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(`{"signature":{"timestamp":"1766900000","token":"tok","signature":"00"},"event-data":{"event":"delivered","id":"ev-1","timestamp":1766900000.25,"tags":["acknowledgement"],"user-variables":{"lethe-request-id":"R-1"},"message":{"headers":{"message-id":"<m@mg>"}}}}`))
	f.Add([]byte(`{"event-data":{"event":"delivered","timestamp":-5,"user-variables":{"lethe-request-id":7}}}`))
	f.Add([]byte(`{"event-data":{}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		sig, ev, err := mail.ParseWebhook(body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "decoding mailgun webhook") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("unclear error: %q", err)
			}
			return
		}
		if ev.Type == "" || string(ev.Type) != strings.ToLower(string(ev.Type)) {
			t.Fatalf("event type %q", ev.Type)
		}
		if !ev.Timestamp.IsZero() && (ev.Timestamp.Year() < 1970 || ev.Timestamp.Year() > 9999) {
			t.Fatalf("timestamp %s cannot be stored", ev.Timestamp)
		}
		for _, s := range []string{string(ev.Type), ev.ID, ev.MessageID, ev.RequestID, ev.Severity, ev.Reason, sig.Token, sig.Timestamp, sig.Signature} {
			if strings.ContainsRune(s, 0) {
				t.Fatalf("a NUL byte reaches the database: %q", s)
			}
		}
		if strings.HasPrefix(ev.MessageID, "<") || strings.HasSuffix(ev.MessageID, ">") {
			t.Fatalf("message id %q keeps its brackets", ev.MessageID)
		}
		// Checking an unsigned body's signature and age must be safe too.
		if mail.VerifyWebhook("whsec-lethe-test", sig) {
			t.Fatalf("a body signed with no key verified: %+v", sig)
		}
		_ = sig.Fresh(time.Unix(1766900000, 0), 5*time.Minute)
	})
}
