package links_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/links"
)

var key = []byte("0123456789abcdef0123456789abcdef")

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newSigner() (links.Signer, *clock) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return links.Signer{Key: key, Now: c.Now}, c
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s, c := newSigner()
	tok, exp := s.Sign("acme", "req-123", time.Hour)
	if want := c.t.Add(time.Hour); !exp.Equal(want) {
		t.Fatalf("expires %v, want %v", exp, want)
	}
	if !strings.HasPrefix(tok, "v1.") {
		t.Fatalf("token %q lacks the version prefix", tok)
	}
	if strings.ContainsAny(tok, "+/=?&# ") {
		t.Fatalf("token %q is not URL-safe", tok)
	}
	l, err := s.Verify(tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if l.TenantID != "acme" || l.RequestID != "req-123" || !l.Expires.Equal(exp) {
		t.Fatalf("got %+v", l)
	}
}

func TestExpired(t *testing.T) {
	s, c := newSigner()
	tok, exp := s.Sign("acme", "req-1", 10*time.Minute)
	c.t = exp.Add(-time.Second)
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("one second before expiry: %v", err)
	}
	c.t = exp
	l, err := s.Verify(tok)
	if !errors.Is(err, links.ErrLinkExpired) {
		t.Fatalf("at expiry: got %v, want ErrLinkExpired", err)
	}
	if l.RequestID != "req-1" {
		t.Fatalf("an expired link should still name its request for the audit, got %+v", l)
	}
}

func TestForged(t *testing.T) {
	s, _ := newSigner()
	tok, _ := s.Sign("acme", "req-1", time.Hour)
	parts := strings.Split(tok, ".")

	// A payload naming another request, with the original MAC.
	other, _ := s.Sign("acme", "req-2", time.Hour)
	swapped := parts[0] + "." + strings.Split(other, ".")[1] + "." + parts[2]

	// A hand-made payload that extends the expiry.
	longer := "v1." + base64.RawURLEncoding.EncodeToString([]byte(`{"t":"acme","r":"req-1","e":4102444800}`)) + "." + parts[2]

	// The same token from a deployment with another key.
	foreign, _ := links.Signer{Key: []byte("another key, another deployment!"), Now: s.Now}.Sign("acme", "req-1", time.Hour)

	flipped := []byte(tok)
	flipped[len(flipped)-3] ^= 1

	cases := map[string]string{
		"payload swapped":  swapped,
		"expiry extended":  longer,
		"other key":        foreign,
		"mac bit flipped":  string(flipped),
		"mac removed":      parts[0] + "." + parts[1] + ".",
		"unknown version":  "v2." + parts[1] + "." + parts[2],
		"no dots":          "garbage",
		"empty":            "",
		"mac not base64":   parts[0] + "." + parts[1] + ".!!!",
		"trailing segment": tok + ".x",
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Verify(bad); !errors.Is(err, links.ErrLinkForged) {
				t.Fatalf("got %v, want ErrLinkForged", err)
			}
		})
	}
}

func TestNoKeyNeverVerifies(t *testing.T) {
	s, _ := newSigner()
	tok, _ := s.Sign("acme", "req-1", time.Hour)
	if _, err := (links.Signer{Now: s.Now}).Verify(tok); !errors.Is(err, links.ErrLinkForged) {
		t.Fatalf("a Signer without key accepted a token: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Sign without a key should panic")
		}
	}()
	links.Signer{}.Sign("acme", "req-1", time.Hour)
}

// A link signed for one purpose is forged for every other: a report link opens no export.
func TestPurposesDoNotMix(t *testing.T) {
	export, _ := newSigner()
	report := export
	report.Purpose = links.PurposeBreachReport
	tok, _ := report.Sign("acme", "br-1/2", time.Hour)
	if _, err := report.Verify(tok); err != nil {
		t.Fatalf("verify with its own purpose: %v", err)
	}
	if _, err := export.Verify(tok); !errors.Is(err, links.ErrLinkForged) {
		t.Fatalf("a report link verified as an export link: %v", err)
	}
	etok, _ := export.Sign("acme", "br-1/2", time.Hour)
	if _, err := report.Verify(etok); !errors.Is(err, links.ErrLinkForged) {
		t.Fatalf("an export link verified as a report link: %v", err)
	}
}
