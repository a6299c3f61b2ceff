package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Codes are the one-time verification codes (table verification_codes), one live code per
// request, kept as a keyed hash only. Every method runs in the caller's transaction, which
// holds the row's lock between reading and writing it.
type Codes struct{}

// Codes returns the verification codes' repository.
func (s *Store) Codes() Codes { return Codes{} }

// codeLock is the advisory lock class of issuing codes ("leth").
const codeLock = 0x6c657468

// LockIssue serialises the issues of request id's codes until db's transaction ends, also
// the first, which has no row to lock yet.
func (Codes) LockIssue(ctx context.Context, db Querier, id string) error {
	if _, err := db.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, codeLock, id); err != nil {
		return fmt.Errorf("locking the codes of request %s: %w", id, err)
	}
	return nil
}

// Code is the stored state of a request's code.
type Code struct {
	RequestID string
	// Channel is how the code was sent (email, sms): what checking it proves.
	Channel   string
	Hash      []byte
	IssuedAt  time.Time
	ExpiresAt time.Time
	Attempts  int
	UsedAt    *time.Time
	// IssuesInWindow codes were issued since WindowStartedAt.
	IssuesInWindow  int
	WindowStartedAt time.Time
}

// Get locks and returns request id's code; ErrNotFound when none was issued.
func (Codes) Get(ctx context.Context, db Querier, id string) (Code, error) {
	c := Code{RequestID: id}
	err := db.QueryRow(ctx, `
		SELECT channel, code_hash, issued_at, expires_at, attempts, used_at, issues_in_window, window_started_at
		FROM verification_codes WHERE request_id = $1 FOR UPDATE`, id).
		Scan(&c.Channel, &c.Hash, &c.IssuedAt, &c.ExpiresAt, &c.Attempts, &c.UsedAt, &c.IssuesInWindow, &c.WindowStartedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Code{}, ErrNotFound
	}
	if err != nil {
		return Code{}, fmt.Errorf("reading the code of request %s: %w", id, err)
	}
	return c, nil
}

// Replace stores c as its request's one code: unused, with no wrong attempts.
func (Codes) Replace(ctx context.Context, db Querier, c Code) error {
	_, err := db.Exec(ctx, `
		INSERT INTO verification_codes (request_id, channel, code_hash, issued_at, expires_at, attempts, issues_in_window, window_started_at)
		VALUES ($1, $7, $2, $3, $4, 0, $5, $6)
		ON CONFLICT (request_id) DO UPDATE SET
			channel = EXCLUDED.channel, code_hash = EXCLUDED.code_hash, issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at,
			attempts = 0, used_at = NULL, issues_in_window = EXCLUDED.issues_in_window,
			window_started_at = EXCLUDED.window_started_at`,
		c.RequestID, c.Hash, c.IssuedAt, c.ExpiresAt, c.IssuesInWindow, c.WindowStartedAt, c.Channel)
	if err != nil {
		return fmt.Errorf("storing the code of request %s: %w", c.RequestID, err)
	}
	return nil
}

// Channel returns the channel request id's code went by, without locking it; ErrNotFound
// when none was issued.
func (Codes) Channel(ctx context.Context, db Querier, id string) (string, error) {
	var ch string
	err := db.QueryRow(ctx, `SELECT channel FROM verification_codes WHERE request_id = $1`, id).Scan(&ch)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading the code of request %s: %w", id, err)
	}
	return ch, nil
}

// MarkUsed records that request id's code worked at at.
func (Codes) MarkUsed(ctx context.Context, db Querier, id string, at time.Time) error {
	if _, err := db.Exec(ctx, `UPDATE verification_codes SET used_at = $2 WHERE request_id = $1`, id, at); err != nil {
		return fmt.Errorf("marking the code of request %s used: %w", id, err)
	}
	return nil
}

// SetAttempts records the number of wrong attempts at request id's code.
func (Codes) SetAttempts(ctx context.Context, db Querier, id string, attempts int) error {
	if _, err := db.Exec(ctx, `UPDATE verification_codes SET attempts = $2 WHERE request_id = $1`, id, attempts); err != nil {
		return fmt.Errorf("counting a wrong attempt at the code of request %s: %w", id, err)
	}
	return nil
}

// Delete forgets the codes of requests ids and returns how many there were.
func (Codes) Delete(ctx context.Context, db Querier, ids []string) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM verification_codes WHERE request_id = ANY($1)`, ids)
	if err != nil {
		return 0, fmt.Errorf("deleting verification codes: %w", err)
	}
	return tag.RowsAffected(), nil
}
