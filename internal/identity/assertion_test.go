package identity_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lethe-privacy/lethe/internal/identity"
)

var (
	tenantKey = []byte("acme-host-app-assertion-key-0123456789")
	audience  = identity.Audience("https://privacy.example.com/", "acme")
	t0        = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func subject() identity.Assertion {
	return identity.Assertion{
		Email: "ada@example.com", CustomerID: "C-42",
		IssuedAt: t0, ExpiresAt: t0.Add(5 * time.Minute), ID: "jti-1",
	}
}

func sign(t *testing.T, a identity.Assertion) string {
	t.Helper()
	tok, err := identity.SignAssertion(tenantKey, a, audience)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signClaims signs arbitrary claims with the given method and key, as a careless or hostile
// host app might.
func signClaims(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{"aud": audience, "iat": t0.Unix(), "exp": t0.Add(5 * time.Minute).Unix(), "jti": "j-1", "email": "ada@example.com"}
}

func TestAudience(t *testing.T) {
	if audience != "https://privacy.example.com/acme" {
		t.Fatalf("Audience = %q", audience)
	}
}

func TestAssertionRoundTrip(t *testing.T) {
	want := subject()
	got, err := identity.VerifyAssertion(tenantKey, sign(t, want), audience, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != want.Email || got.CustomerID != want.CustomerID || got.Phone != "" || got.ID != "jti-1" ||
		!got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("got %+v, want %+v", got, want)
	}

	// The header says HS256 and the audience is a plain string.
	header, body, _ := strings.Cut(sign(t, want), ".")
	h, _ := base64.RawURLEncoding.DecodeString(header)
	if !strings.Contains(string(h), `"alg":"HS256"`) {
		t.Fatalf("header %s", h)
	}
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(body, ".")[0])
	if !strings.Contains(string(b), `"aud":"https://privacy.example.com/acme"`) {
		t.Fatalf("claims %s", b)
	}
}

func TestSignAssertionFillsID(t *testing.T) {
	a := subject()
	a.ID = ""
	got, err := identity.VerifyAssertion(tenantKey, sign(t, a), audience, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ID) < 16 {
		t.Fatalf("ID %q, want a random jti", got.ID)
	}
}

func TestAssertionAudienceArrayOfOne(t *testing.T) {
	c := goodClaims()
	c["aud"] = []string{audience}
	if _, err := identity.VerifyAssertion(tenantKey, signClaims(t, jwt.SigningMethodHS256, tenantKey, c), audience, t0); err != nil {
		t.Fatalf("aud as a one-element array: %v", err)
	}
}

func TestAssertionExpired(t *testing.T) {
	tok := sign(t, subject())
	if _, err := identity.VerifyAssertion(tenantKey, tok, audience, t0.Add(5*time.Minute-time.Second)); err != nil {
		t.Fatalf("just before exp: %v", err)
	}
	if _, err := identity.VerifyAssertion(tenantKey, tok, audience, t0.Add(5*time.Minute)); !errors.Is(err, identity.ErrAssertionExpired) {
		t.Fatalf("at exp: got %v, want ErrAssertionExpired", err)
	}
	c := goodClaims()
	c["nbf"] = t0.Add(3 * time.Minute).Unix()
	if _, err := identity.VerifyAssertion(tenantKey, signClaims(t, jwt.SigningMethodHS256, tenantKey, c), audience, t0); !errors.Is(err, identity.ErrAssertionExpired) {
		t.Fatalf("before nbf: got %v, want ErrAssertionExpired", err)
	}
}

func TestAssertionForged(t *testing.T) {
	good := sign(t, subject())
	parts := strings.Split(good, ".")

	// Payload changed to another subject, signature kept.
	other := subject()
	other.Email = "mallory@example.com"
	tampered := parts[0] + "." + strings.Split(sign(t, other), ".")[1] + "." + parts[2]

	// alg none, as jwt libraries produce it.
	none := signClaims(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims())
	// alg none by hand, with the original signature stripped.
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	noneByHand := noneHeader + "." + parts[1] + "."

	otherKey := signClaims(t, jwt.SigningMethodHS256, []byte("some-other-tenant-key-0123456789abc"), goodClaims())
	hs512 := signClaims(t, jwt.SigningMethodHS512, tenantKey, goodClaims())
	hs384 := signClaims(t, jwt.SigningMethodHS384, tenantKey, goodClaims())

	cases := map[string]string{
		"tampered payload":   tampered,
		"alg none":           none,
		"alg none by hand":   noneByHand,
		"other key":          otherKey,
		"HS512":              hs512,
		"HS384":              hs384,
		"signature stripped": parts[0] + "." + parts[1] + ".",
		"not a jwt":          "hello",
		"empty":              "",
		"unknown alg":        base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX256"}`)) + "." + parts[1] + "." + parts[2],
		"signature bit-flip": parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"header bit-flip":    flip(parts[0]) + "." + parts[1] + "." + parts[2],
		"trailing junk":      good + ".x",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := identity.VerifyAssertion(tenantKey, tok, audience, t0)
			if !errors.Is(err, identity.ErrAssertionForged) {
				t.Fatalf("got %v, want ErrAssertionForged", err)
			}
			if strings.Contains(err.Error(), "example.com") {
				t.Fatalf("error %q carries a claim value", err)
			}
		})
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestAssertionAudience(t *testing.T) {
	for name, aud := range map[string]any{
		"other tenant":   identity.Audience("https://privacy.example.com", "globex"),
		"other host":     identity.Audience("https://evil.example.net", "acme"),
		"missing":        nil,
		"two audiences":  []string{audience, "https://other.example.com/acme"},
		"prefix only":    "https://privacy.example.com",
		"trailing slash": audience + "/",
	} {
		t.Run(name, func(t *testing.T) {
			c := goodClaims()
			if aud == nil {
				delete(c, "aud")
			} else {
				c["aud"] = aud
			}
			_, err := identity.VerifyAssertion(tenantKey, signClaims(t, jwt.SigningMethodHS256, tenantKey, c), audience, t0)
			if !errors.Is(err, identity.ErrAssertionAudience) {
				t.Fatalf("got %v, want ErrAssertionAudience", err)
			}
		})
	}
}

func TestAssertionClaims(t *testing.T) {
	cases := map[string]func(jwt.MapClaims){
		"no exp":               func(c jwt.MapClaims) { delete(c, "exp") },
		"no iat":               func(c jwt.MapClaims) { delete(c, "iat") },
		"lifetime over 10 min": func(c jwt.MapClaims) { c["exp"] = t0.Add(10*time.Minute + time.Second).Unix() },
		"exp before iat":       func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Second).Unix() },
		"iat in future": func(c jwt.MapClaims) {
			c["iat"] = t0.Add(61 * time.Second).Unix()
			c["exp"] = t0.Add(5 * time.Minute).Unix()
		},
		"no subject":           func(c jwt.MapClaims) { delete(c, "email") },
		"empty subject":        func(c jwt.MapClaims) { c["email"] = "" },
		"email with a name":    func(c jwt.MapClaims) { c["email"] = "Ada <ada@example.com>" },
		"email not an address": func(c jwt.MapClaims) { c["email"] = "ada" },
		"phone not E.164":      func(c jwt.MapClaims) { c["phone"] = "0151 123456" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := goodClaims()
			mutate(c)
			_, err := identity.VerifyAssertion(tenantKey, signClaims(t, jwt.SigningMethodHS256, tenantKey, c), audience, t0)
			if !errors.Is(err, identity.ErrAssertionClaims) {
				t.Fatalf("got %v, want ErrAssertionClaims", err)
			}
			if strings.Contains(err.Error(), "ada") || strings.Contains(err.Error(), "0151") {
				t.Fatalf("error %q carries a claim value", err)
			}
		})
	}
}

func TestAssertionLimitsAccepted(t *testing.T) {
	cases := map[string]func(jwt.MapClaims){
		"lifetime exactly 10 min":    func(c jwt.MapClaims) { c["exp"] = t0.Add(10 * time.Minute).Unix() },
		"iat 1 min in future":        func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Minute).Unix() },
		"phone only":                 func(c jwt.MapClaims) { delete(c, "email"); c["phone"] = "+4915112345678" },
		"customer id only":           func(c jwt.MapClaims) { delete(c, "email"); c["customer_id"] = "C-42" },
		"unknown claims are ignored": func(c jwt.MapClaims) { c["iss"] = "https://acme.example.com"; c["sub"] = "u-1" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := goodClaims()
			mutate(c)
			if _, err := identity.VerifyAssertion(tenantKey, signClaims(t, jwt.SigningMethodHS256, tenantKey, c), audience, t0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAssertionShortKeyRefused(t *testing.T) {
	short := []byte("too-short")
	if _, err := identity.SignAssertion(short, subject(), audience); err == nil {
		t.Fatal("signing with a short key succeeded")
	}
	tok := signClaims(t, jwt.SigningMethodHS256, short, goodClaims())
	if _, err := identity.VerifyAssertion(short, tok, audience, t0); err == nil {
		t.Fatal("verifying with a short key succeeded")
	}
}

func TestReplays(t *testing.T) {
	pool := openDB(t)
	clk := &clock{t: t0}
	r := &identity.Replays{Pool: pool, Now: clk.Now}
	ctx := context.Background()
	a, err := identity.VerifyAssertion(tenantKey, sign(t, subject()), audience, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Remember(ctx, audience, a); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := r.Remember(ctx, audience, a); !errors.Is(err, identity.ErrAssertionReplayed) {
		t.Fatalf("second use: got %v, want ErrAssertionReplayed", err)
	}
	// The same jti at another tenant is another assertion.
	if err := r.Remember(ctx, identity.Audience("https://privacy.example.com", "globex"), a); err != nil {
		t.Fatalf("other audience: %v", err)
	}
	noID := a
	noID.ID = ""
	if err := r.Remember(ctx, audience, noID); !errors.Is(err, identity.ErrAssertionClaims) {
		t.Fatalf("no jti: got %v, want ErrAssertionClaims", err)
	}

	// Entries go once their assertion can no longer verify, and only then.
	clk.Advance(10 * time.Minute)
	b := subject()
	b.ID = "jti-2"
	b.IssuedAt, b.ExpiresAt = clk.Now(), clk.Now().Add(5*time.Minute)
	if err := r.Remember(ctx, audience, b); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM identity_assertions_seen WHERE jti = 'jti-1'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d expired entries kept", n)
	}
	if err := r.Remember(ctx, audience, b); !errors.Is(err, identity.ErrAssertionReplayed) {
		t.Fatalf("live entry pruned: got %v", err)
	}
}

func TestReplaysConcurrentOneWins(t *testing.T) {
	pool := openDB(t)
	r := &identity.Replays{Pool: pool, Now: func() time.Time { return t0 }}
	a := subject()
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Remember(context.Background(), audience, a)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, identity.ErrAssertionReplayed):
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent uses accepted, want 1", ok)
	}
}
