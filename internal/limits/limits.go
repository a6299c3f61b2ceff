// Package limits is the one rate limiter of every surface that takes requests from outside
// (the /v1 API, MyAccount, Kafka intake): per tenant, per subject and per client address,
// counted in PostgreSQL (store.Take) so that every Lethe process shares each budget.
package limits

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/store"
)

// Action is what is counted.
type Action string

// The actions with limits (config.Limits has one set of scopes for each).
const (
	Submit Action = "submit"
	// Verify is one check of a verification code: its subject limit bounds the guesses at a
	// subject's codes across all of the subject's requests.
	Verify Action = "verify"
	Resend Action = "resend"
)

// Keys name who an event is counted against; an empty key is not counted.
type Keys struct {
	Tenant string
	// Subject is an opaque keyed hash of the subject (requests.Service.SubjectKey).
	Subject string
	// Client is the client's IP address; only its keyed hash is stored.
	Client string
}

// Exceeded is the error of a refused event: which limit, and how long until it would pass.
type Exceeded struct {
	Action     Action
	Scope      string // tenant, subject or client
	RetryAfter time.Duration
}

func (e *Exceeded) Error() string {
	return fmt.Sprintf("too many %s attempts for this %s; try again in %d seconds", e.Action, e.Scope, Seconds(e.RetryAfter))
}

// Seconds is a wait as a Retry-After value: whole seconds, at least one.
func Seconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }

// RetryAfter returns the wait of a refused event anywhere in err's chain.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Exceeded
	if errors.As(err, &e) {
		return e.RetryAfter, true
	}
	return 0, false
}

// sweepEvery is how often a process deletes keys whose budget is full again.
const sweepEvery = time.Minute

// Limiter applies config.Limits. It is safe for concurrent use.
type Limiter struct {
	store *store.Store
	rules config.Limits
	key   []byte
	now   func() time.Time

	mu    sync.Mutex
	swept time.Time
}

// New builds the limiter. key (the deployment's signing key) hashes client addresses, so the
// table never holds one in clear. now defaults to time.Now.
func New(st *store.Store, rules config.Limits, key string, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{store: st, rules: rules, key: []byte(key), now: now}
}

// Take counts the event against every scope, or against none: when one refuses it, the units
// already taken are given back, and the error is *Exceeded. The client is counted first, so one
// client's refused flood costs the tenant nothing.
func (l *Limiter) Take(ctx context.Context, a Action, k Keys) error {
	return l.take(ctx, a, k, false)
}

// Count counts the event against every scope without ever refusing it: for Kafka intake,
// whose producer is a trusted service and whose refused message would be a request lost, but
// whose submissions still use up the subject's budget on the other surfaces.
func (l *Limiter) Count(ctx context.Context, a Action, k Keys) error {
	return l.take(ctx, a, k, true)
}

type counted struct {
	key  string
	rate config.Rate
}

func (l *Limiter) take(ctx context.Context, a Action, k Keys, force bool) error {
	var sc config.Scopes
	switch a {
	case Submit:
		sc = l.rules.Submit
	case Verify:
		sc = l.rules.Verify
	case Resend:
		sc = l.rules.Resend
	default:
		return fmt.Errorf("rate limits: unknown action %q", a)
	}
	now := l.now()
	l.sweep(ctx, now)
	scopes := []struct {
		name, key string
		rate      config.Rate
	}{
		{"client", l.clientKey(k.Client), sc.Client},
		{"subject", k.Subject, sc.Subject},
		{"tenant", k.Tenant, sc.Tenant},
	}
	var taken []counted
	for _, s := range scopes {
		if s.key == "" || s.rate.Off() {
			continue
		}
		key := string(a) + ":" + s.name + ":" + s.key
		ok, wait, err := l.store.Take(ctx, key, s.rate.N, s.rate.Per, now, force)
		if err == nil && ok {
			taken = append(taken, counted{key, s.rate})
			continue
		}
		for _, t := range taken {
			// A refund that fails leaves the unit spent: stricter, never looser.
			_ = l.store.Refund(context.WithoutCancel(ctx), t.key, t.rate.N, t.rate.Per)
		}
		if err != nil {
			return err
		}
		return &Exceeded{Action: a, Scope: s.name, RetryAfter: wait}
	}
	return nil
}

// sweep deletes expired keys at most once a minute per process. A failed sweep changes no
// decision (an expired row counts as none), so its error is left to the next one.
func (l *Limiter) sweep(ctx context.Context, now time.Time) {
	l.mu.Lock()
	due := now.Sub(l.swept) >= sweepEvery
	if due {
		l.swept = now
	}
	l.mu.Unlock()
	if due {
		_, _ = l.store.ExpireRates(ctx, now)
	}
}

// clientKey is a keyed hash of the client's network: the address, or its /64 for IPv6, since
// one host commonly holds a whole /64.
func (l *Limiter) clientKey(addr string) string {
	if addr == "" {
		return ""
	}
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("client\x00" + network(addr)))
	return hex.EncodeToString(m.Sum(nil))
}
