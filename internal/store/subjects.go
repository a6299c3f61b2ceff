package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Subjects is Lethe's own copy of each request's subject (table request_subjects): the
// identifiers given, which of them are proven, the language and a rectification's corrected
// values. A row lives while Lethe still needs to reach the subject; an erasure deletes it.
type Subjects struct{ pool *pgxpool.Pool }

// Subjects returns the subjects' repository.
func (s *Store) Subjects() Subjects { return Subjects{pool: s.Pool} }

// Identifiers are a subject's email, phone and customer id; "" where none is known.
type Identifiers struct {
	Email      string
	Phone      string
	CustomerID string
}

// SubjectRow is the subject of one request. Changes and Proofs are the caller's values,
// stored as JSON (Proofs keyed by identifier name: email, phone, customer_id).
type SubjectRow struct {
	RequestID string
	TenantID  string
	Identifiers
	Language string
	Changes  any // nil: none
	Proofs   any
}

// Create inserts the subject of a new request.
func (Subjects) Create(ctx context.Context, db Querier, s SubjectRow) error {
	_, err := db.Exec(ctx, `
		INSERT INTO request_subjects (request_id, tenant_id, email, phone, customer_id, language, changes, proofs)
		VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8)`,
		s.RequestID, s.TenantID, s.Email, s.Phone, s.CustomerID, s.Language, s.Changes, s.Proofs)
	if err != nil {
		return fmt.Errorf("inserting the subject of request %s: %w", s.RequestID, err)
	}
	return nil
}

// provenIdentifiers selects a row's email, phone and customer id, each only if proven: one
// typed next to a verified email, but never proven, must not match anybody's data.
const provenIdentifiers = `CASE WHEN proofs ? 'email' THEN email END, CASE WHEN proofs ? 'phone' THEN phone END,
	CASE WHEN proofs ? 'customer_id' THEN customer_id END`

// Proven returns the tenant and the proven identifiers of request id's subject; ErrNotFound
// when the subject is not (or no longer) known.
func (q Subjects) Proven(ctx context.Context, id string) (string, Identifiers, error) {
	var tenant string
	var email, phone, customer *string
	err := q.pool.QueryRow(ctx, `SELECT tenant_id, `+provenIdentifiers+` FROM request_subjects WHERE request_id = $1`,
		id).Scan(&tenant, &email, &phone, &customer)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", Identifiers{}, ErrNotFound
	}
	if err != nil {
		return "", Identifiers{}, fmt.Errorf("reading the subject of request %s: %w", id, err)
	}
	return tenant, Identifiers{Email: deref(email), Phone: deref(phone), CustomerID: deref(customer)}, nil
}

// Changes returns the corrected values of request id's rectification (nil when it has none);
// ErrNotFound when the subject is not known.
func (q Subjects) Changes(ctx context.Context, id string) (map[string]any, error) {
	var changes map[string]any
	err := q.pool.QueryRow(ctx, `SELECT changes FROM request_subjects WHERE request_id = $1`, id).Scan(&changes)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading the corrections of request %s: %w", id, err)
	}
	return changes, nil
}

// Contact returns where and in which language to write to tenant's request id's subject
// (email "" when none is on record); ErrNotFound when the subject is not known.
func (q Subjects) Contact(ctx context.Context, tenant, id string) (email, language string, err error) {
	var e, l *string
	err = q.pool.QueryRow(ctx, `SELECT email, language FROM request_subjects WHERE request_id = $1 AND tenant_id = $2`,
		id, tenant).Scan(&e, &l)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("reading the subject of request %s: %w", id, err)
	}
	return deref(e), deref(l), nil
}

// Given returns the identifiers given for tenant's request id's subject and their proofs as
// stored; ErrNotFound when the subject is not known.
func (q Subjects) Given(ctx context.Context, tenant, id string) (Identifiers, json.RawMessage, error) {
	var email, phone, customer *string
	var proofs json.RawMessage
	err := q.pool.QueryRow(ctx,
		`SELECT email, phone, customer_id, proofs FROM request_subjects WHERE request_id = $1 AND tenant_id = $2`,
		id, tenant).Scan(&email, &phone, &customer, &proofs)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identifiers{}, nil, ErrNotFound
	}
	if err != nil {
		return Identifiers{}, nil, fmt.Errorf("reading the identifiers of request %s: %w", id, err)
	}
	return Identifiers{Email: deref(email), Phone: deref(phone), CustomerID: deref(customer)}, proofs, nil
}

// OfRequest returns the identifiers of tenant's request id's subject, and known=false when the
// request exists but its subject was forgotten; ErrNotFound for an unknown id or another
// tenant's request.
func (q Subjects) OfRequest(ctx context.Context, tenant, id string) (ids Identifiers, known bool, err error) {
	var email, phone, customer *string
	err = q.pool.QueryRow(ctx, `
		SELECT rs.email, rs.phone, rs.customer_id, rs.request_id IS NOT NULL
		FROM requests r LEFT JOIN request_subjects rs ON rs.request_id = r.id
		WHERE r.id = $1 AND r.tenant_id = $2`, id, tenant).Scan(&email, &phone, &customer, &known)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identifiers{}, false, ErrNotFound
	}
	if err != nil {
		return Identifiers{}, false, fmt.Errorf("reading the subject of request %s: %w", id, err)
	}
	return Identifiers{Email: deref(email), Phone: deref(phone), CustomerID: deref(customer)}, known, nil
}

// AddProofs merges proofs (JSON, keyed by identifier name) into those of tenant's request id's
// subject, keeping the others; ErrNotFound when the subject is not known.
func (q Subjects) AddProofs(ctx context.Context, tenant, id string, proofs json.RawMessage) error {
	tag, err := q.pool.Exec(ctx,
		`UPDATE request_subjects SET proofs = proofs || $3 WHERE request_id = $1 AND tenant_id = $2`, id, tenant, proofs)
	if err != nil {
		return fmt.Errorf("recording identifier proofs of request %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// RequestStatus is a request's id and recorded status.
type RequestStatus struct {
	ID     string
	Status string
}

// Matching lists tenant's requests whose subject is request id's or shares one of ids (the
// email compared without case), with their status.
func (q Subjects) Matching(ctx context.Context, tenant, id string, ids Identifiers) ([]RequestStatus, error) {
	rows, err := q.pool.Query(ctx, `
		SELECT rs.request_id, r.status FROM request_subjects rs JOIN requests r ON r.id = rs.request_id
		WHERE rs.tenant_id = $1
		  AND (rs.request_id = $2 OR lower(rs.email) = lower($3::text) OR rs.phone = $4::text OR rs.customer_id = $5::text)`,
		tenant, id, nullable(ids.Email), nullable(ids.Phone), nullable(ids.CustomerID))
	if err != nil {
		return nil, fmt.Errorf("finding the requests of the subject of request %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RequestStatus, error) {
		var s RequestStatus
		err := r.Scan(&s.ID, &s.Status)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("finding the requests of the subject of request %s: %w", id, err)
	}
	return out, nil
}

// Delete forgets the subjects of requests ids and returns how many there were.
func (Subjects) Delete(ctx context.Context, db Querier, ids []string) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM request_subjects WHERE request_id = ANY($1)`, ids)
	if err != nil {
		return 0, fmt.Errorf("forgetting subjects: %w", err)
	}
	return tag.RowsAffected(), nil
}
