package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BreachReport is one generated authority report of a breach (table breach_reports, migration
// 0019): where the document is kept and what it was built from.
type BreachReport struct {
	BreachID       string    `json:"breach_id"`
	Version        int       `json:"version"`
	Format         string    `json:"format"`
	ContentVersion int       `json:"content_version"`
	RegisterAt     time.Time `json:"register_at"`
	URI            string    `json:"-"`
	SHA256         string    `json:"sha256"`
	Bytes          int64     `json:"bytes"`
	GeneratedBy    string    `json:"generated_by"`
	GeneratedAt    time.Time `json:"generated_at"`
}

// AddReport records r as the breach's next report version and reports whether it is new. A
// report with the same format and checksum already recorded is returned instead, unchanged:
// the same register state renders the same document, so asking again adds no version. It locks
// the breach's row, so it needs a transaction; the caller adds the audit event to it.
func (Breaches) AddReport(ctx context.Context, tx pgx.Tx, r BreachReport) (BreachReport, bool, error) {
	var locked string
	if err := tx.QueryRow(ctx, `SELECT id FROM breaches WHERE id = $1 FOR UPDATE`, r.BreachID).Scan(&locked); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return r, false, fmt.Errorf("recording a report of breach %s: %w", r.BreachID, ErrNotFound)
		}
		return r, false, fmt.Errorf("recording a report of breach %s: %w", r.BreachID, err)
	}
	rows, err := tx.Query(ctx, `SELECT `+reportColumns+` FROM breach_reports WHERE breach_id = $1 AND format = $2 AND sha256 = $3
		ORDER BY version LIMIT 1`, r.BreachID, r.Format, r.SHA256)
	if err != nil {
		return r, false, fmt.Errorf("reading the reports of breach %s: %w", r.BreachID, err)
	}
	same, err := pgx.CollectRows(rows, scanReport)
	if err != nil {
		return r, false, fmt.Errorf("reading the reports of breach %s: %w", r.BreachID, err)
	}
	if len(same) > 0 {
		return same[0], false, nil
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO breach_reports (breach_id, version, format, content_version, register_at, uri, sha256, bytes, generated_by, generated_at)
		SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9 FROM breach_reports WHERE breach_id = $1
		RETURNING version`,
		r.BreachID, r.Format, r.ContentVersion, r.RegisterAt, r.URI, r.SHA256, r.Bytes, r.GeneratedBy, r.GeneratedAt).Scan(&r.Version)
	if err != nil {
		return r, false, fmt.Errorf("recording a report of breach %s: %w", r.BreachID, err)
	}
	return r, true, nil
}

// Reports returns every report of tenant's breach id, oldest first (none for another tenant's
// breach). An empty tenant reads any tenant's.
func (q Breaches) Reports(ctx context.Context, tenant, id string) ([]BreachReport, error) {
	return q.reports(ctx, tenant, id, 0)
}

// Report returns one version of tenant's breach's report; ErrNotFound when there is none.
func (q Breaches) Report(ctx context.Context, tenant, id string, version int) (BreachReport, error) {
	out, err := q.reports(ctx, tenant, id, version)
	if err != nil {
		return BreachReport{}, err
	}
	if len(out) == 0 {
		return BreachReport{}, ErrNotFound
	}
	return out[0], nil
}

func (q Breaches) reports(ctx context.Context, tenant, id string, version int) ([]BreachReport, error) {
	rows, err := q.pool.Query(ctx, `SELECT `+reportColumns+` FROM breach_reports r
		WHERE breach_id = $1 AND ($3 = 0 OR version = $3)
			AND EXISTS (SELECT 1 FROM breaches b WHERE b.id = r.breach_id AND ($2 = '' OR b.tenant_id = $2))
		ORDER BY version`, id, tenant, version)
	if err != nil {
		return nil, fmt.Errorf("reading the reports of breach %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, scanReport)
	if err != nil {
		return nil, fmt.Errorf("reading the reports of breach %s: %w", id, err)
	}
	return out, nil
}

const reportColumns = `breach_id, version, format, content_version, register_at, uri, sha256, bytes, generated_by, generated_at`

func scanReport(r pgx.CollectableRow) (b BreachReport, err error) {
	err = r.Scan(&b.BreachID, &b.Version, &b.Format, &b.ContentVersion, &b.RegisterAt, &b.URI, &b.SHA256, &b.Bytes, &b.GeneratedBy, &b.GeneratedAt)
	b.RegisterAt, b.GeneratedAt = b.RegisterAt.UTC(), b.GeneratedAt.UTC()
	return b, err
}
