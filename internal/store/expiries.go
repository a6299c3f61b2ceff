package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Expiries are subjects' expiry dates (table subject_expiries), one per subject of a tenant.
type Expiries struct{ pool *pgxpool.Pool }

// Expiries returns the expiry dates' repository.
func (s *Store) Expiries() Expiries { return Expiries{pool: s.Pool} }

// Expiry is one subject's expiry date. Identifiers are empty once the subject was purged.
type Expiry struct {
	ID         string `json:"id"`
	TenantID   string `json:"tenant_id"`
	SubjectRef string `json:"subject_ref"`
	Identifiers
	ExpiresAt time.Time  `json:"expires_at"`
	SetBy     string     `json:"set_by"`
	SetAt     time.Time  `json:"set_at"`
	PurgedAt  *time.Time `json:"purged_at,omitempty"`
}

const expiryColumns = `id, tenant_id, subject_ref, coalesce(email, ''), coalesce(phone, ''), coalesce(customer_id, ''),
	expires_at, set_by, set_at, purged_at`

func scanExpiry(row pgx.Row) (Expiry, error) {
	var e Expiry
	err := row.Scan(&e.ID, &e.TenantID, &e.SubjectRef, &e.Email, &e.Phone, &e.CustomerID, &e.ExpiresAt, &e.SetBy, &e.SetAt, &e.PurgedAt)
	return e, err
}

// Set records e's date for its subject, replacing an earlier one (a purged subject's expiry
// set again waits anew), and returns the row.
func (Expiries) Set(ctx context.Context, db Querier, e Expiry) (Expiry, error) {
	row := db.QueryRow(ctx, `
		INSERT INTO subject_expiries (id, tenant_id, subject_ref, email, phone, customer_id, expires_at, set_by, set_at)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), $7, $8, $9)
		ON CONFLICT (tenant_id, subject_ref) DO UPDATE SET email = excluded.email, phone = excluded.phone,
			customer_id = excluded.customer_id, expires_at = excluded.expires_at, set_by = excluded.set_by,
			set_at = excluded.set_at, purged_at = NULL
		RETURNING `+expiryColumns,
		e.ID, e.TenantID, e.SubjectRef, e.Email, e.Phone, e.CustomerID, e.ExpiresAt, e.SetBy, e.SetAt)
	out, err := scanExpiry(row)
	if err != nil {
		return Expiry{}, fmt.Errorf("recording the expiry date %s: %w", e.ID, err)
	}
	return out, nil
}

// Get returns expiry id; ErrNotFound when there is none.
func (q Expiries) Get(ctx context.Context, id string) (Expiry, error) {
	e, err := scanExpiry(q.pool.QueryRow(ctx, `SELECT `+expiryColumns+` FROM subject_expiries WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Expiry{}, ErrNotFound
	}
	if err != nil {
		return Expiry{}, fmt.Errorf("reading the expiry date %s: %w", id, err)
	}
	return e, nil
}

// Purged records that expiry id's subject was purged and forgets its identifiers, unless the
// date was moved meanwhile (expiresAt is the date that was purged for).
func (Expiries) Purged(ctx context.Context, db Querier, id string, expiresAt, at time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE subject_expiries SET purged_at = $3, email = NULL, phone = NULL, customer_id = NULL
		WHERE id = $1 AND expires_at = $2 AND purged_at IS NULL`, id, expiresAt, at)
	if err != nil {
		return false, fmt.Errorf("recording the purge of expiry %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Forget marks purged the tenant's expiry dates of a subject whose proven identifiers are ids
// (their erasure purged them) and forgets the identifiers kept for them; it returns how many.
func (Expiries) Forget(ctx context.Context, db Querier, tenant string, ids Identifiers, at time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE subject_expiries SET purged_at = coalesce(purged_at, $5), email = NULL, phone = NULL, customer_id = NULL
		WHERE tenant_id = $1 AND (lower(email) = lower(NULLIF($2, '')) OR phone = NULLIF($3, '') OR customer_id = NULLIF($4, ''))`,
		tenant, ids.Email, ids.Phone, ids.CustomerID, at)
	if err != nil {
		return 0, fmt.Errorf("forgetting expiry dates: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Pending counts tenant's expiry dates not yet purged.
func (q Expiries) Pending(ctx context.Context, tenant string) (int64, error) {
	var n int64
	if err := q.pool.QueryRow(ctx, `SELECT count(*) FROM subject_expiries WHERE tenant_id = $1 AND purged_at IS NULL`, tenant).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting expiry dates: %w", err)
	}
	return n, nil
}
