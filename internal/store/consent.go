package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Consent is the consent ledger (table consent_ledger), append-only. The subject is kept as a
// keyed hash, so the ledger outlives an erasure without holding the address.
type Consent struct{ pool *pgxpool.Pool }

// Consent returns the consent ledger's repository.
func (s *Store) Consent() Consent { return Consent{pool: s.Pool} }

// ConsentChange is one consent decision.
type ConsentChange struct {
	Key         string // idempotency: a second record with the same key records nothing
	TenantID    string
	SubjectHash string
	Purpose     string
	Granted     bool
	Source      string
	RequestID   string // "" when no request made the change
	ChangedAt   time.Time
}

// Record appends c to the ledger.
func (q Consent) Record(ctx context.Context, c ConsentChange) error {
	_, err := q.pool.Exec(ctx, `
		INSERT INTO consent_ledger (event_key, tenant_id, subject_hash, purpose, granted, source, request_id, changed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_key) DO NOTHING`,
		c.Key, c.TenantID, c.SubjectHash, c.Purpose, c.Granted, c.Source, nullable(c.RequestID), c.ChangedAt)
	if err != nil {
		return fmt.Errorf("recording a consent change: %w", err)
	}
	return nil
}
