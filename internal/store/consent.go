package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Consent is the consent ledger (table consent_ledger), append-only (migration 0029 refuses
// updates and deletes). The subject is kept as a keyed hash, so the ledger outlives an erasure
// without holding the address. Every change recorded, by any writer, is queued for the
// lethe.consent.state event (see Publish).
type Consent struct{ pool *pgxpool.Pool }

// Consent returns the consent ledger's repository.
func (s *Store) Consent() Consent { return Consent{pool: s.Pool} }

// ConsentChange is one consent decision.
type ConsentChange struct {
	ID          int64     `json:"-"` // the ledger's order of recording
	Key         string    `json:"-"` // idempotency: a second record with the same key records nothing
	TenantID    string    `json:"-"`
	SubjectHash string    `json:"-"`
	Purpose     string    `json:"purpose"`
	Granted     bool      `json:"granted"`
	Source      string    `json:"source"`
	RequestID   string    `json:"request_id,omitempty"` // "" when no request made the change
	ChangedAt   time.Time `json:"changed_at"`
	RecordedAt  time.Time `json:"recorded_at"`
}

// ConsentState is a purpose's current consent, derived from the ledger by ConsentOf.
type ConsentState struct {
	Purpose string `json:"purpose"`
	Granted bool   `json:"granted"`
	// DecidedBy is the purpose of the change that decided it: the purpose itself or a broader
	// one (a withdrawal of "marketing" decides "marketing_email"); "" when nothing is recorded.
	DecidedBy string    `json:"decided_by,omitempty"`
	Source    string    `json:"source,omitempty"`
	ChangedAt time.Time `json:"changed_at,omitzero"`
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

// History lists every change of the subject's consent in the tenant, in the order they were
// made (changed_at, then the order recorded).
func (q Consent) History(ctx context.Context, tenant, subjectHash string) ([]ConsentChange, error) {
	return history(ctx, q.pool, tenant, subjectHash)
}

// State is the subject's current consent to purpose (ConsentOf over History).
func (q Consent) State(ctx context.Context, tenant, subjectHash, purpose string) (ConsentState, error) {
	h, err := q.History(ctx, tenant, subjectHash)
	if err != nil {
		return ConsentState{}, err
	}
	return ConsentOf(h, purpose), nil
}

const ledgerColumns = `id, COALESCE(event_key, ''), tenant_id, subject_hash, purpose, granted, source, COALESCE(request_id, ''), changed_at, recorded_at`

func history(ctx context.Context, db Querier, tenant, subjectHash string) ([]ConsentChange, error) {
	rows, err := db.Query(ctx, `SELECT `+ledgerColumns+` FROM consent_ledger
		WHERE tenant_id = $1 AND subject_hash = $2 ORDER BY changed_at, id`, tenant, subjectHash)
	if err != nil {
		return nil, fmt.Errorf("reading the consent ledger: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanChange)
	if err != nil {
		return nil, fmt.Errorf("reading the consent ledger: %w", err)
	}
	return out, nil
}

func scanChange(row pgx.CollectableRow) (ConsentChange, error) {
	var c ConsentChange
	err := row.Scan(&c.ID, &c.Key, &c.TenantID, &c.SubjectHash, &c.Purpose, &c.Granted, &c.Source, &c.RequestID, &c.ChangedAt, &c.RecordedAt)
	return c, err
}

// ConsentOf derives the current consent to purpose from a subject's history: the latest change
// (by when it was made, equal times by the order recorded) to the purpose or to a broader one
// that contains it ("marketing" contains "marketing_email"), so a change that arrives late
// never overrides a newer one. Nothing recorded means not granted.
func ConsentOf(history []ConsentChange, purpose string) ConsentState {
	var last *ConsentChange
	for i, c := range history {
		if !Contains(c.Purpose, purpose) {
			continue
		}
		if last == nil || c.ChangedAt.After(last.ChangedAt) || c.ChangedAt.Equal(last.ChangedAt) && c.ID > last.ID {
			last = &history[i]
		}
	}
	if last == nil {
		return ConsentState{Purpose: purpose}
	}
	return ConsentState{Purpose: purpose, Granted: last.Granted, DecidedBy: last.Purpose, Source: last.Source, ChangedAt: last.ChangedAt}
}

// CurrentConsent is the current state of every purpose the history names, sorted by purpose.
func CurrentConsent(history []ConsentChange) []ConsentState {
	var purposes []string
	for _, c := range history {
		if !slices.Contains(purposes, c.Purpose) {
			purposes = append(purposes, c.Purpose)
		}
	}
	slices.Sort(purposes)
	out := []ConsentState{}
	for _, p := range purposes {
		out = append(out, ConsentOf(history, p))
	}
	return out
}

// Contains reports whether a change to purpose broad decides purpose p: the same purpose, or
// p below it ("marketing" contains "marketing_email", not "marketingx").
func Contains(broad, p string) bool {
	return broad == p || strings.HasPrefix(p, broad+"_")
}

// ErrNothingQueued is what Publish reports when no change waits for its event.
var ErrNothingQueued = errors.New("no consent change waits for its event")

// Publish hands up to limit recorded changes that wait for their lethe.consent.state event to
// publish, oldest first, each with the state of its purpose it leads to, and removes them from
// the queue once publish returned nil. A publish error leaves that change and the later ones
// queued, so each change is published at least once. Concurrent callers take different changes.
func (q Consent) Publish(ctx context.Context, limit int, publish func(context.Context, ConsentChange, ConsentState) error) (int, error) {
	tx, err := q.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("publishing consent changes: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT `+ledgerColumns+` FROM consent_ledger WHERE id IN (
			SELECT ledger_id FROM consent_outbox ORDER BY ledger_id LIMIT $1 FOR UPDATE SKIP LOCKED)
		ORDER BY id`, limit)
	if err != nil {
		return 0, fmt.Errorf("reading the consent changes to publish: %w", err)
	}
	queued, err := pgx.CollectRows(rows, scanChange)
	if err != nil {
		return 0, fmt.Errorf("reading the consent changes to publish: %w", err)
	}
	if len(queued) == 0 {
		return 0, ErrNothingQueued
	}
	done := 0
	var perr error
	for _, c := range queued {
		h, err := history(ctx, tx, c.TenantID, c.SubjectHash)
		if err != nil {
			perr = err
			break
		}
		if perr = publish(ctx, c, ConsentOf(h, c.Purpose)); perr != nil {
			break
		}
		if _, err := tx.Exec(ctx, `DELETE FROM consent_outbox WHERE ledger_id = $1`, c.ID); err != nil {
			perr = fmt.Errorf("dequeuing a published consent change: %w", err)
			break
		}
		done++
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("publishing consent changes: %w", err)
	}
	return done, perr
}
