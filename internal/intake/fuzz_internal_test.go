package intake

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/schemas"
)

// fuzzIntake is an intake for the tenant of the schema fixtures, with a fixed clock; decoding
// needs neither Kafka nor the database.
func fuzzIntake() *Intake {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	cfg := config.Config{Tenants: []config.Tenant{{ID: "salon-north", Regime: "gdpr", Country: "DE", TimeZone: "Europe/Berlin"}}}
	return &Intake{Requests: &requests.Service{Cfg: cfg, Now: func() time.Time { return now }},
		SigningKey: "intake-fuzz-signing-key-0123456789abcdef", Now: func() time.Time { return now }}
}

func addFixtures(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "schemas", "testdata", dir, "*.json"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
}

// checkRefusal: a message Lethe cannot take goes to the DLQ (bus.Invalid) with a reason that
// names no identifier of the subject.
func checkRefusal(t *testing.T, err error, s connectors.Subject) {
	t.Helper()
	if !bus.IsInvalid(err) && !errors.Is(err, requests.ErrInvalid) {
		t.Fatalf("refused with a retryable error, so it would be retried for ever: %v", err)
	}
	for _, id := range []string{s.Email, s.Phone, s.CustomerID} {
		if len(id) >= 4 && strings.Contains(err.Error(), id) {
			t.Fatalf("the reason %q quotes the subject's %q", err, id)
		}
	}
}

// FuzzDecodeRequest: a request from lethe.requests.intake that its schema accepts is decoded
// into a submission that carries the message's own fields, and is then accepted or refused for
// good with a reason; it never turns into an error that would be retried for ever.
func FuzzDecodeRequest(f *testing.F) {
	addFixtures(f, "request-intake")
	f.Add([]byte(`{"schema":"lethe.request.intake","version":1,"tenant_id":"salon-north","type":"access","subject":{"email":" a@b.co "},"received_at":"2999-01-01T00:00:00Z"}`))
	in := fuzzIntake()
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := schemas.ValidateAs(schemas.RequestIntake, data) == nil
		sub, err := in.decodeRequest(data)
		if err != nil {
			if valid {
				t.Fatalf("the schema accepts what the decoder refuses: %v", err)
			}
			checkRefusal(t, err, connectors.Subject{})
			return
		}
		if !valid {
			return // the consumer never hands it over
		}
		if sub.TenantID == "" || sub.Type == "" || sub.Channel == "" || sub.ReceivedAt.IsZero() {
			t.Fatalf("decoded submission lacks what the schema requires: %+v", sub)
		}
		subject := sub.Subject
		if err := in.Requests.Validate(&sub); err != nil {
			checkRefusal(t, err, subject)
		}
	})
}

var requestID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FuzzDecodeConsent: a consent change its schema accepts always gets the same ledger key, and a
// marketing withdrawal becomes an objection that the request rules accept, or is refused for
// good with a reason.
func FuzzDecodeConsent(f *testing.F) {
	addFixtures(f, "consent-change")
	f.Add([]byte(`{"schema":"lethe.consent.change","version":1,"tenant_id":"salon-north","subject":{"phone":"+4915112345678"},"purpose":"marketing","granted":false,"changed_at":"2099-03-01T09:30:00+05:00","source":"x"}`))
	in := fuzzIntake()
	f.Fuzz(func(t *testing.T, data []byte) {
		if schemas.ValidateAs(schemas.ConsentChange, data) != nil {
			return // the consumer dead-letters it before decoding
		}
		c, err := in.decodeConsent(data)
		if err != nil {
			checkRefusal(t, err, c.msg.Subject)
			return
		}
		again, _ := in.decodeConsent(data)
		if again.key != c.key || !strings.HasPrefix(c.key, "consent:") {
			t.Fatalf("ledger key not stable: %q, %q", c.key, again.key)
		}
		if Withdraws(c.msg.Purpose, c.msg.Granted) != (c.objection != nil) {
			t.Fatalf("withdrawal %v but objection %v", Withdraws(c.msg.Purpose, c.msg.Granted), c.objection)
		}
		if o := c.objection; o != nil {
			if !requestID.MatchString(o.RequestID) || o.ReceivedAt.After(in.now()) || !o.IdentityVerified {
				t.Fatalf("objection breaks the request rules: %+v", o)
			}
		}
	})
}
