package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/internal/store"
)

// Errors of identity assertions. None of them carries a claim's value.
var (
	ErrAssertionExpired  = errors.New("identity assertion expired or not yet valid")
	ErrAssertionForged   = errors.New("identity assertion is not validly signed with the tenant's key (HS256)")
	ErrAssertionAudience = errors.New("identity assertion is addressed to another audience")
	ErrAssertionClaims   = errors.New("identity assertion has invalid claims")
	ErrAssertionReplayed = errors.New("identity assertion was already used")
)

// Limits of identity assertions.
const (
	// MaxAssertionLifetime bounds exp - iat: an assertion is a proof minted for one visit.
	MaxAssertionLifetime = 10 * time.Minute
	// AssertionClockSkew is how far iat (and nbf) may lie in Lethe's future, for host clocks
	// that run slightly ahead.
	AssertionClockSkew = time.Minute
	// MinAssertionKeyLen matches the configuration's rule for tenants' assertion keys.
	MinAssertionKeyLen = 32
)

// Assertion is a host application's signed statement that its logged-in user is the subject
// identified by Email, Phone and/or CustomerID (at least one).
type Assertion struct {
	Email      string
	Phone      string
	CustomerID string
	IssuedAt   time.Time
	ExpiresAt  time.Time
	ID         string // jti, required; Replays accepts each once
}

// Audience is the aud claim Lethe expects from a tenant's host application: Lethe's public URL
// (http.public_url, without a trailing slash) + "/" + the tenant id, e.g.
// "https://privacy.example.com/acme". Binding the tenant stops an assertion minted for one
// tenant from being replayed at another that shares a key by mistake.
func Audience(publicURL, tenantID string) string {
	return strings.TrimRight(publicURL, "/") + "/" + tenantID
}

// claims is the JWT body as received; aud may be a string or a one-element array.
type claims struct {
	Audience   jwt.ClaimStrings `json:"aud,omitempty"`
	IssuedAt   *jwt.NumericDate `json:"iat,omitempty"`
	ExpiresAt  *jwt.NumericDate `json:"exp,omitempty"`
	NotBefore  *jwt.NumericDate `json:"nbf,omitempty"`
	ID         string           `json:"jti,omitempty"`
	Email      string           `json:"email,omitempty"`
	Phone      string           `json:"phone,omitempty"`
	CustomerID string           `json:"customer_id,omitempty"`
}

func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *claims) GetIssuer() (string, error)                   { return "", nil }
func (c *claims) GetSubject() (string, error)                  { return "", nil }
func (c *claims) GetAudience() (jwt.ClaimStrings, error)       { return c.Audience, nil }

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// VerifyAssertion checks a host application's identity assertion: an HS256 JWT signed with
// the tenant's assertion key, whose aud is exactly audience (see Audience), with exp no more
// than MaxAssertionLifetime after iat, iat not beyond AssertionClockSkew in the future, and at
// least one of the claims email, phone (E.164), customer_id, and a jti. Every other algorithm,
// "none" included, is refused. It does not remember the jti: Replays does, and callers that
// accept assertions must use it.
func VerifyAssertion(key []byte, token string, audience string, now time.Time) (Assertion, error) {
	if len(key) < MinAssertionKeyLen {
		return Assertion{}, fmt.Errorf("verifying an identity assertion: the tenant's assertion key must be at least %d bytes", MinAssertionKeyLen)
	}
	var c claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithStrictDecoding(),
		// Time and audience are checked below, each with its own error.
		jwt.WithoutClaimsValidation(),
	)
	_, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		// Malformed, unknown or disallowed algorithm, bad signature: all are not an
		// assertion from the tenant. The library's message names no claim values.
		return Assertion{}, fmt.Errorf("%w: %v", ErrAssertionForged, err)
	}
	if len(c.Audience) != 1 || c.Audience[0] != audience {
		return Assertion{}, ErrAssertionAudience
	}
	if c.ExpiresAt == nil || c.IssuedAt == nil || c.ID == "" {
		return Assertion{}, fmt.Errorf("%w: exp, iat and jti are required", ErrAssertionClaims)
	}
	iat, exp := c.IssuedAt.Time, c.ExpiresAt.Time
	if !exp.After(iat) || exp.Sub(iat) > MaxAssertionLifetime {
		return Assertion{}, fmt.Errorf("%w: exp must be after iat and at most %s later", ErrAssertionClaims, MaxAssertionLifetime)
	}
	if iat.After(now.Add(AssertionClockSkew)) {
		return Assertion{}, fmt.Errorf("%w: iat is in the future", ErrAssertionClaims)
	}
	if !now.Before(exp) {
		return Assertion{}, ErrAssertionExpired
	}
	if c.NotBefore != nil && c.NotBefore.Time.After(now.Add(AssertionClockSkew)) {
		return Assertion{}, ErrAssertionExpired
	}
	a := Assertion{
		Email: c.Email, Phone: c.Phone, CustomerID: c.CustomerID,
		IssuedAt: iat, ExpiresAt: exp, ID: c.ID,
	}
	if err := a.validSubject(); err != nil {
		return Assertion{}, err
	}
	return a, nil
}

func (a Assertion) validSubject() error {
	if a.Email == "" && a.Phone == "" && a.CustomerID == "" {
		return fmt.Errorf("%w: one of email, phone, customer_id is required", ErrAssertionClaims)
	}
	if a.Email != "" {
		if m, err := mail.ParseAddress(a.Email); err != nil || m.Address != a.Email {
			return fmt.Errorf("%w: email is not a bare email address", ErrAssertionClaims)
		}
	}
	if a.Phone != "" && !e164.MatchString(a.Phone) {
		return fmt.Errorf("%w: phone must be in E.164 form", ErrAssertionClaims)
	}
	return nil
}

// SignAssertion mints an assertion as a host application would: HS256 with the tenant's key,
// aud = audience. IssuedAt and ExpiresAt are required; an empty ID gets a random one. Lethe uses
// it in tests and the demo; it also documents the format for integrators (see doc.go).
func SignAssertion(key []byte, a Assertion, audience string) (string, error) {
	if len(key) < MinAssertionKeyLen {
		return "", fmt.Errorf("signing an identity assertion: the key must be at least %d bytes", MinAssertionKeyLen)
	}
	if a.IssuedAt.IsZero() || a.ExpiresAt.IsZero() {
		return "", fmt.Errorf("signing an identity assertion: IssuedAt and ExpiresAt are required")
	}
	// JSON would replace the bytes with U+FFFD, vouching for an identifier nobody gave.
	for name, v := range map[string]string{"email": a.Email, "phone": a.Phone, "customer_id": a.CustomerID, "jti": a.ID} {
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("signing an identity assertion: %s is not valid UTF-8", name)
		}
	}
	if a.ID == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("signing an identity assertion: %w", err)
		}
		a.ID = hex.EncodeToString(b)
	}
	// MapClaims keeps aud a plain string, the form most host-app libraries emit.
	m := jwt.MapClaims{
		"aud": audience,
		"iat": a.IssuedAt.Unix(),
		"exp": a.ExpiresAt.Unix(),
		"jti": a.ID,
	}
	for k, v := range map[string]string{"email": a.Email, "phone": a.Phone, "customer_id": a.CustomerID} {
		if v != "" {
			m[k] = v
		}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, m).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing an identity assertion: %w", err)
	}
	return s, nil
}

// Replays remembers the IDs (jti) of accepted assertions until they expire, so each is
// accepted once. Safe for concurrent use across processes: the primary key decides.
type Replays struct {
	Pool *pgxpool.Pool
	Now  func() time.Time // default time.Now
}

// Remember records a verified assertion's ID for its audience. It fails with
// ErrAssertionReplayed when that ID was already used, and with ErrAssertionClaims when the
// assertion has no ID (a deployment that wants replay protection needs jti). Expired entries
// are pruned on the way.
func (r *Replays) Remember(ctx context.Context, audience string, a Assertion) error {
	if a.ID == "" {
		return fmt.Errorf("%w: jti is required", ErrAssertionClaims)
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	// An ID is forgotten only once its assertion can no longer verify, with a margin for
	// Lethe replicas whose clocks differ.
	seen := store.Assertions{}
	if err := seen.Prune(ctx, r.Pool, now.Add(-AssertionClockSkew)); err != nil {
		return err
	}
	fresh, err := seen.Remember(ctx, r.Pool, audience, a.ID, a.ExpiresAt, now)
	if err != nil {
		return err
	}
	if !fresh {
		return ErrAssertionReplayed
	}
	return nil
}
