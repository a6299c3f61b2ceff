package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/store"
)

// Errors of one-time codes. They never carry the code or the subject's address.
var (
	ErrNotFound        = errors.New("no request awaiting identity verification with this id")
	ErrTooManyCodes    = errors.New("too many verification codes issued for this request; try again later")
	ErrNoCode          = errors.New("no verification code was issued for this request")
	ErrExpired         = errors.New("the verification code has expired; request a new one")
	ErrTooManyAttempts = errors.New("too many wrong attempts; request a new verification code")
	ErrWrongCode       = errors.New("the verification code is wrong")
	ErrUsed            = errors.New("the verification code was already used")
)

// Defaults of Codes.
const (
	DefaultCodeTTL          = 15 * time.Minute
	DefaultMaxAttempts      = 5
	DefaultMaxIssuesPerHour = 5
)

// issueWindow is the period MaxIssuesPerHour counts over.
const issueWindow = time.Hour

// Codes issues and checks one-time codes sent by email or text, one live code per request. Only
// HMAC-SHA256(Key, requestID + ":" + code) is stored. Send and Check are safe for concurrent
// use from any number of processes: each runs in one transaction holding the code's lock.
type Codes struct {
	Pool             *pgxpool.Pool
	Key              []byte           // the deployment's signing key
	TTL              time.Duration    // default 15 minutes
	MaxAttempts      int              // wrong tries before the code is dead; default 5
	MaxIssuesPerHour int              // codes per request per hour; default 5
	Now              func() time.Time // default time.Now
}

// Clock is the time on the clock codes are checked by: a code sent for a subject who asked now
// is issued as of it (SendAt).
func (c *Codes) Clock() time.Time { return c.now() }

func (c *Codes) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Codes) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultCodeTTL
}

func (c *Codes) maxAttempts() int {
	if c.MaxAttempts > 0 {
		return c.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (c *Codes) maxIssues() int {
	if c.MaxIssuesPerHour > 0 {
		return c.MaxIssuesPerHour
	}
	return DefaultMaxIssuesPerHour
}

func (c *Codes) hash(requestID, code string) []byte {
	m := hmac.New(sha256.New, c.Key)
	m.Write([]byte(requestID + ":" + code))
	return m.Sum(nil)
}

// awaiting reports whether a request status still accepts identity proof. "received" counts
// too: Submit writes it and the workflow moves to identity_pending a moment later, and the
// subject must be able to ask for a code in between.
func awaiting(status string) bool {
	return status == "received" || status == "identity_pending"
}

// deliveryError marks the deliver callback's failure, returned to Send's caller as it was.
type deliveryError struct{ err error }

func (e *deliveryError) Error() string { return e.err.Error() }

// Send creates a new six-digit code for the request and hands it to deliver (which emails or
// texts it by channel), then replaces any earlier code (whose wrong attempts no longer count)
// with it, whichever channel that went by. The code is stored, with its channel, only when
// deliver returned nil, so a code the provider refused never works and the earlier one still
// does; deliver's error is returned as it was. Lethe keeps only the code's hash. It fails with
// ErrNotFound when the request does not exist or no longer awaits identity verification, and
// with ErrTooManyCodes after MaxIssuesPerHour codes within an hour, over both channels.
//
// The transaction is open while deliver runs (one mail or Twilio API call): that is what keeps
// a concurrent Send from passing the hour's count or storing a code that was never sent.
func (c *Codes) Send(ctx context.Context, requestID string, channel Channel, deliver func(code string, expiresAt time.Time) error) (time.Time, error) {
	return c.SendAt(ctx, requestID, c.now(), channel, deliver)
}

// SendAt is Send as of now: the subject asked then, on the clock that checks the code.
func (c *Codes) SendAt(ctx context.Context, requestID string, now time.Time, channel Channel, deliver func(code string, expiresAt time.Time) error) (time.Time, error) {
	if len(c.Key) == 0 {
		return time.Time{}, errors.New("issuing a verification code: no signing key configured")
	}
	if channel != ChannelEmail && channel != ChannelSMS {
		return time.Time{}, fmt.Errorf("issuing a verification code: %w %q", ErrNoChannel, string(channel))
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return time.Time{}, fmt.Errorf("issuing a verification code: %w", err)
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now = now.UTC()
	expiresAt := now.Add(c.ttl())
	sum := c.hash(requestID, code)

	codes := store.Codes{}
	err = pgx.BeginFunc(ctx, c.Pool, func(tx pgx.Tx) error {
		if err := codes.LockIssue(ctx, tx, requestID); err != nil {
			return err
		}
		// KEY SHARE keeps the request from being deleted under us without holding up the
		// workflow's status updates; Check looks at the status again anyway.
		status, err := store.Requests{}.StatusKeyShare(ctx, tx, requestID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !awaiting(status)) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		issues, windowStart := 0, now
		prev, err := codes.Get(ctx, tx, requestID)
		switch {
		case err == nil:
			issues, windowStart = prev.IssuesInWindow, prev.WindowStartedAt
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if now.Sub(windowStart) >= issueWindow {
			issues, windowStart = 0, now
		}
		if issues >= c.maxIssues() {
			return fmt.Errorf("%w: %w", ErrTooManyCodes, &limits.Exceeded{Action: limits.Resend, Scope: "request", RetryAfter: windowStart.Add(issueWindow).Sub(now)})
		}
		if err := deliver(code, expiresAt); err != nil {
			return &deliveryError{err}
		}
		return codes.Replace(ctx, tx, store.Code{
			RequestID: requestID, Channel: string(channel), Hash: sum, IssuedAt: now, ExpiresAt: expiresAt, IssuesInWindow: issues + 1, WindowStartedAt: windowStart,
		})
	})
	var failed *deliveryError
	switch {
	case errors.As(err, &failed):
		return time.Time{}, failed.err
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrTooManyCodes):
		return time.Time{}, err
	case err != nil:
		return time.Time{}, fmt.Errorf("issuing a verification code: %w", err)
	}
	return expiresAt, nil
}

// Check verifies a code the subject typed and returns the channel it was sent by, which is the
// one identifier it proves. On success the code is marked used and can never succeed again,
// so of two concurrent checks of the right code exactly one wins.
//
// Errors: ErrNotFound (no such request, or it no longer awaits identity verification),
// ErrNoCode, ErrUsed, ErrTooManyAttempts, ErrExpired, ErrWrongCode. A wrong code counts an
// attempt; the wrong try that uses up the last attempt matches both ErrWrongCode and
// ErrTooManyAttempts, so callers can tell the subject to ask for a new code at once.
func (c *Codes) Check(ctx context.Context, requestID, code string) (Channel, error) {
	if len(c.Key) == 0 {
		return "", errors.New("checking a verification code: no signing key configured")
	}
	code = strings.TrimSpace(code)
	now := c.now().UTC()
	var result error
	var channel Channel
	codes := store.Codes{}
	err := pgx.BeginFunc(ctx, c.Pool, func(tx pgx.Tx) error {
		status, err := store.Requests{}.Status(ctx, tx, requestID)
		if errors.Is(err, store.ErrNotFound) {
			result = ErrNotFound
			return nil
		}
		if err != nil {
			return err
		}
		stored, err := codes.Get(ctx, tx, requestID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			result = ErrNoCode
			return nil
		case err != nil:
			return err
		case stored.UsedAt != nil:
			result = ErrUsed
			return nil
		case !awaiting(status):
			result = ErrNotFound
			return nil
		case stored.Attempts >= c.maxAttempts():
			result = ErrTooManyAttempts
			return nil
		case !now.Before(stored.ExpiresAt):
			result = ErrExpired
			return nil
		}
		if hmac.Equal(stored.Hash, c.hash(requestID, code)) {
			channel = Channel(stored.Channel)
			return codes.MarkUsed(ctx, tx, requestID, now)
		}
		attempts := stored.Attempts + 1
		if err := codes.SetAttempts(ctx, tx, requestID, attempts); err != nil {
			return err
		}
		result = ErrWrongCode
		if attempts >= c.maxAttempts() {
			result = fmt.Errorf("%w; %w", ErrWrongCode, ErrTooManyAttempts)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("checking a verification code: %w", err)
	}
	return channel, result
}

// Sent returns the channel the request's latest code went by; ok is false when none was sent.
func (c *Codes) Sent(ctx context.Context, requestID string) (Channel, bool, error) {
	ch, err := store.Codes{}.Channel(ctx, c.Pool, requestID)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return Channel(ch), true, nil
}
