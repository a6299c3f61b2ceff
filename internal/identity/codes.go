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

// Codes issues and checks one-time email codes, one live code per request. Only
// HMAC-SHA256(Key, requestID + ":" + code) is stored. Issue and Check are safe for concurrent
// use from any number of processes: each runs in one transaction holding the code's row lock.
type Codes struct {
	Pool             *pgxpool.Pool
	Key              []byte           // the deployment's signing key
	TTL              time.Duration    // default 15 minutes
	MaxAttempts      int              // wrong tries before the code is dead; default 5
	MaxIssuesPerHour int              // codes per request per hour; default 5
	Now              func() time.Time // default time.Now
}

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

// Issue creates a new six-digit code for the request, replacing any earlier one (whose wrong
// attempts no longer count). The caller sends the code to the subject; Lethe keeps only its
// hash. It fails with ErrNotFound when the request does not exist or no longer awaits identity
// verification, and with ErrTooManyCodes after MaxIssuesPerHour codes within an hour.
func (c *Codes) Issue(ctx context.Context, requestID string) (code string, expiresAt time.Time, err error) {
	if len(c.Key) == 0 {
		return "", time.Time{}, errors.New("issuing a verification code: no signing key configured")
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issuing a verification code: %w", err)
	}
	code = fmt.Sprintf("%06d", n.Int64())
	now := c.now().UTC()
	expiresAt = now.Add(c.ttl())
	sum := c.hash(requestID, code)

	err = pgx.BeginFunc(ctx, c.Pool, func(tx pgx.Tx) error {
		// KEY SHARE keeps the request from being deleted under us without holding up the
		// workflow's status updates; Check looks at the status again anyway.
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM requests WHERE id = $1 FOR KEY SHARE`, requestID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !awaiting(status)) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		// The first code of a request: a concurrent Issue may insert too, and then the
		// loser waits for the winner's row and takes the update path below.
		tag, err := tx.Exec(ctx, `
			INSERT INTO verification_codes (request_id, code_hash, issued_at, expires_at, attempts, issues_in_window, window_started_at)
			VALUES ($1, $2, $3, $4, 0, 1, $3)
			ON CONFLICT (request_id) DO NOTHING`, requestID, sum, now, expiresAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var issues int
		var windowStart time.Time
		if err := tx.QueryRow(ctx, `
			SELECT issues_in_window, window_started_at FROM verification_codes
			WHERE request_id = $1 FOR UPDATE`, requestID).Scan(&issues, &windowStart); err != nil {
			return err
		}
		if now.Sub(windowStart) >= issueWindow {
			issues, windowStart = 0, now
		}
		if issues >= c.maxIssues() {
			return ErrTooManyCodes
		}
		_, err = tx.Exec(ctx, `
			UPDATE verification_codes
			SET code_hash = $2, issued_at = $3, expires_at = $4, attempts = 0, used_at = NULL,
			    issues_in_window = $5, window_started_at = $6
			WHERE request_id = $1`, requestID, sum, now, expiresAt, issues+1, windowStart)
		return err
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrTooManyCodes) {
		return "", time.Time{}, err
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issuing a verification code: %w", err)
	}
	return code, expiresAt, nil
}

// Check verifies a code the subject typed. On success the code is marked used and can never
// succeed again, so of two concurrent checks of the right code exactly one wins.
//
// Errors: ErrNotFound (no such request, or it no longer awaits identity verification),
// ErrNoCode, ErrUsed, ErrTooManyAttempts, ErrExpired, ErrWrongCode. A wrong code counts an
// attempt; the wrong try that uses up the last attempt matches both ErrWrongCode and
// ErrTooManyAttempts, so callers can tell the subject to ask for a new code at once.
func (c *Codes) Check(ctx context.Context, requestID, code string) error {
	if len(c.Key) == 0 {
		return errors.New("checking a verification code: no signing key configured")
	}
	code = strings.TrimSpace(code)
	now := c.now().UTC()
	var result error
	err := pgx.BeginFunc(ctx, c.Pool, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM requests WHERE id = $1`, requestID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			result = ErrNotFound
			return nil
		}
		if err != nil {
			return err
		}
		var (
			stored    []byte
			expiresAt time.Time
			attempts  int
			usedAt    *time.Time
		)
		err = tx.QueryRow(ctx, `
			SELECT code_hash, expires_at, attempts, used_at FROM verification_codes
			WHERE request_id = $1 FOR UPDATE`, requestID).Scan(&stored, &expiresAt, &attempts, &usedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			result = ErrNoCode
			return nil
		case err != nil:
			return err
		case usedAt != nil:
			result = ErrUsed
			return nil
		case !awaiting(status):
			result = ErrNotFound
			return nil
		case attempts >= c.maxAttempts():
			result = ErrTooManyAttempts
			return nil
		case !now.Before(expiresAt):
			result = ErrExpired
			return nil
		}
		if hmac.Equal(stored, c.hash(requestID, code)) {
			_, err := tx.Exec(ctx, `UPDATE verification_codes SET used_at = $2 WHERE request_id = $1`, requestID, now)
			return err
		}
		attempts++
		if _, err := tx.Exec(ctx, `UPDATE verification_codes SET attempts = $2 WHERE request_id = $1`, requestID, attempts); err != nil {
			return err
		}
		result = ErrWrongCode
		if attempts >= c.maxAttempts() {
			result = fmt.Errorf("%w; %w", ErrWrongCode, ErrTooManyAttempts)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checking a verification code: %w", err)
	}
	return result
}
