package links_test

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lethe-privacy/lethe/internal/links"
)

// FuzzVerify: any token a subject's browser sends is refused cleanly unless Lethe signed it,
// and every link Lethe signs verifies as exactly what was signed.
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := links.Signer{Key: []byte("links-fuzz-signing-key-0123456789abcdef"), Now: func() time.Time { return now }}
	good, _ := s.Sign("salon", "R-ABC", time.Hour)
	f.Add(good, "salon", "R-ABC", int64(time.Hour))
	f.Add(good[:len(good)-1], "spa", "R-1", int64(-time.Second))
	f.Add("v1..", "t", "r", int64(0))
	f.Add("v1.eyJ0IjoicyIsInIiOiJyIiwiZSI6MX0.AAAA", "a", "b", int64(1))
	f.Add("v2."+good[3:], "\xff", "r", int64(time.Minute))
	f.Fuzz(func(t *testing.T, token, tenant, request string, ttl int64) {
		l, err := s.Verify(token)
		switch {
		case err == nil:
			if token != good {
				t.Fatalf("a token Lethe did not sign verified: %q -> %+v", token, l)
			}
		case errors.Is(err, links.ErrLinkExpired), errors.Is(err, links.ErrLinkForged):
		default:
			t.Fatalf("Verify failed with an unexpected error: %v", err)
		}

		if tenant == "" || request == "" || !utf8.ValidString(tenant) || !utf8.ValidString(request) {
			return // Lethe's tenant and request IDs are never empty and always UTF-8
		}
		tok, expires := s.Sign(tenant, request, time.Duration(ttl))
		got, err := s.Verify(tok)
		if err != nil && !(errors.Is(err, links.ErrLinkExpired) && !now.Before(expires)) {
			t.Fatalf("a signed link (ttl %s) did not verify: %v", time.Duration(ttl), err)
		}
		if got.TenantID != tenant || got.RequestID != request || !got.Expires.Equal(expires) {
			t.Fatalf("signed %q/%q until %s, verified as %+v", tenant, request, expires, got)
		}
	})
}
