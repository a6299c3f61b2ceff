package identity_test

import (
	"errors"
	"net/mail"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lethe-privacy/lethe/internal/identity"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// FuzzVerifyAssertion: a host application's assertion is the one credential a stranger can
// put in a request body. Whatever arrives is either refused with one of the documented errors
// or yields an assertion that meets every rule; and what a host signs by the rules verifies
// as exactly what it signed.
func FuzzVerifyAssertion(f *testing.F) {
	key := []byte("identity-fuzz-assertion-key-0123456789")
	const aud = "https://privacy.example.com/salon"
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	good, err := identity.SignAssertion(key, identity.Assertion{Email: "a@example.com", IssuedAt: now, ExpiresAt: now.Add(time.Minute), ID: "j1"}, aud)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "a@example.com", "", "", int64(0), int64(60))
	f.Add(good+"x", "", "+4915112345678", "", int64(-30), int64(600))
	f.Add("eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.", "", "", "C-1", int64(0), int64(601))
	f.Add("a.b.c", "Nora <a@example.com>", "0151", "", int64(120), int64(10))
	f.Add("", "", "", "", int64(0), int64(0))
	f.Fuzz(func(t *testing.T, token, email, phone, customer string, iatOffset, lifetime int64) {
		a, err := identity.VerifyAssertion(key, token, aud, now)
		if err != nil {
			requireDocumented(t, err)
		} else {
			requireValid(t, a, now)
		}

		iat := now.Add(time.Duration(iatOffset%7200) * time.Second)
		in := identity.Assertion{Email: email, Phone: phone, CustomerID: customer, IssuedAt: iat,
			ExpiresAt: iat.Add(time.Duration(lifetime%7200) * time.Second), ID: "fuzz"}
		tok, err := identity.SignAssertion(key, in, aud)
		if err != nil {
			for _, v := range []string{email, phone, customer} {
				if !utf8.ValidString(v) {
					return // refused: JSON cannot carry it as given
				}
			}
			t.Fatalf("signing: %v", err)
		}
		got, err := identity.VerifyAssertion(key, tok, aud, now)
		if err != nil {
			requireDocumented(t, err)
			return
		}
		requireValid(t, got, now)
		if got.Email != email || got.Phone != phone || got.CustomerID != customer ||
			!got.IssuedAt.Equal(in.IssuedAt.Truncate(time.Second)) || !got.ExpiresAt.Equal(in.ExpiresAt.Truncate(time.Second)) {
			t.Fatalf("signed %+v, verified %+v", in, got)
		}
		if _, err := identity.VerifyAssertion(key, tok, aud+"x", now); !errors.Is(err, identity.ErrAssertionAudience) {
			t.Fatalf("an assertion for another audience: %v", err)
		}
	})
}

func requireDocumented(t *testing.T, err error) {
	t.Helper()
	for _, e := range []error{identity.ErrAssertionExpired, identity.ErrAssertionForged, identity.ErrAssertionAudience, identity.ErrAssertionClaims} {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("undocumented error: %v", err)
}

func requireValid(t *testing.T, a identity.Assertion, now time.Time) {
	t.Helper()
	if a.Email == "" && a.Phone == "" && a.CustomerID == "" {
		t.Fatalf("accepted an assertion without an identifier: %+v", a)
	}
	if a.Email != "" {
		if m, err := mail.ParseAddress(a.Email); err != nil || m.Address != a.Email {
			t.Fatalf("accepted an email that is not a bare address: %q", a.Email)
		}
	}
	if a.Phone != "" && !e164.MatchString(a.Phone) {
		t.Fatalf("accepted a phone not in E.164: %q", a.Phone)
	}
	if a.ID == "" || !a.ExpiresAt.After(a.IssuedAt) || a.ExpiresAt.Sub(a.IssuedAt) > identity.MaxAssertionLifetime ||
		!now.Before(a.ExpiresAt) || a.IssuedAt.After(now.Add(identity.AssertionClockSkew)) {
		t.Fatalf("accepted an assertion outside its rules: %+v", a)
	}
}
