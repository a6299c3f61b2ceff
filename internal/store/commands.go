package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Command is the record of one published connector command: what its task token was issued
// for. The token itself is kept only as a digest.
type Command struct {
	ID        string
	RequestID string
	TenantID  string
	Connector string
	Action    string
	// ExportPrefix is the URI prefix the connector's export files must lie under ("" when
	// the command asks for no export).
	ExportPrefix string
	IssuedAt     time.Time
}

// ErrNoCommand is returned by FindCommand when no command carried the token.
var ErrNoCommand = errors.New("no command was issued with this task token")

// TokenDigest is how a task token is kept and looked up.
func TokenDigest(token []byte) []byte {
	sum := sha256.Sum256(token)
	return sum[:]
}

// RecordCommand stores c as issued with token. A command id names an idempotency key and an
// attempt, and a request retried by staff runs the same key from attempt 1 again with a new
// token: the new token replaces the old, whose activity has closed (a late result for it
// completes nothing either way).
func (s *Store) RecordCommand(ctx context.Context, c Command, token []byte) error {
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO connector_commands (id, token_sha256, request_id, tenant_id, connector, action, export_prefix, issued_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET token_sha256 = $2, request_id = $3, tenant_id = $4, connector = $5,
			action = $6, export_prefix = $7, issued_at = $8`,
		c.ID, TokenDigest(token), c.RequestID, c.TenantID, c.Connector, c.Action, c.ExportPrefix, c.IssuedAt)
	if err != nil {
		return fmt.Errorf("recording command %s: %w", c.ID, err)
	}
	return nil
}

// FindCommand returns the command that carried token.
func (s *Store) FindCommand(ctx context.Context, token []byte) (Command, error) {
	var c Command
	err := s.Pool.QueryRow(ctx, `
		SELECT id, request_id, tenant_id, connector, action, export_prefix, issued_at
		FROM connector_commands WHERE token_sha256 = $1`, TokenDigest(token)).
		Scan(&c.ID, &c.RequestID, &c.TenantID, &c.Connector, &c.Action, &c.ExportPrefix, &c.IssuedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNoCommand
	}
	if err != nil {
		return c, fmt.Errorf("looking up the command of a task token: %w", err)
	}
	return c, nil
}
