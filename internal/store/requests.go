package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// Requests is the read model of requests (table requests): submission creates a row, the
// request workflow records each step of its lifecycle in it.
type Requests struct{ pool *pgxpool.Pool }

// Requests returns the requests' repository.
func (s *Store) Requests() Requests { return Requests{pool: s.Pool} }

// RequestRow is a request as the read model keeps it. State is the workflow's state, encoded
// as JSON by the caller's types.
type RequestRow struct {
	ID         string
	TenantID   string
	Type       string
	Status     string
	Regime     string
	Country    string
	Extended   bool
	Channel    string // where it came in: api, myaccount, kafka, slack, ...
	ReceivedAt time.Time
	DueDate    string // YYYY-MM-DD; "" before the clock starts
	State      json.RawMessage
	UpdatedAt  time.Time
}

// Lock locks request id's row for the rest of db's transaction and returns its tenant and
// whether its workflow was started; ErrNotFound when there is no such request.
func (Requests) Lock(ctx context.Context, db Querier, id string) (tenant string, started bool, err error) {
	err = db.QueryRow(ctx, `SELECT tenant_id, started FROM requests WHERE id = $1 FOR UPDATE`, id).Scan(&tenant, &started)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, ErrNotFound
	}
	if err != nil {
		return "", false, fmt.Errorf("locking request %s: %w", id, err)
	}
	return tenant, started, nil
}

// Create inserts a new request, received and not yet started.
func (Requests) Create(ctx context.Context, db Querier, r RequestRow) error {
	_, err := db.Exec(ctx, `
		INSERT INTO requests (id, tenant_id, type, status, regime, country, received_at, state, channel)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.TenantID, r.Type, r.Status, r.Regime, r.Country, r.ReceivedAt, r.State, r.Channel)
	if err != nil {
		return fmt.Errorf("inserting request %s: %w", r.ID, err)
	}
	return nil
}

// MarkStarted records that request id's workflow exists.
func (q Requests) MarkStarted(ctx context.Context, id string) error {
	if _, err := q.pool.Exec(ctx, `UPDATE requests SET started = true WHERE id = $1`, id); err != nil {
		return fmt.Errorf("recording the start of request %s: %w", id, err)
	}
	return nil
}

// Record writes one lifecycle step: the row is created if need be, else its status, extension,
// due date, state and update time change.
func (Requests) Record(ctx context.Context, db Querier, r RequestRow) error {
	var due any
	if r.DueDate != "" {
		due = r.DueDate
	}
	_, err := db.Exec(ctx, `
		INSERT INTO requests (id, tenant_id, type, status, regime, country, extended, received_at, due_date, state, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET status = $4, extended = $7, due_date = $9, state = $10, updated_at = $11`,
		r.ID, r.TenantID, r.Type, r.Status, r.Regime, r.Country, r.Extended, r.ReceivedAt, due, r.State, r.UpdatedAt)
	if err != nil {
		return fmt.Errorf("updating the read model of request %s: %w", r.ID, err)
	}
	return nil
}

// State returns the recorded state of tenant's request id; ErrNotFound for an unknown id or
// another tenant's request.
func (q Requests) State(ctx context.Context, tenant, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := q.pool.QueryRow(ctx, `SELECT state FROM requests WHERE id = $1 AND tenant_id = $2`, id, tenant).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading request %s: %w", id, err)
	}
	return raw, nil
}

// Type returns request id's type; ErrNotFound when there is no such request.
func (q Requests) Type(ctx context.Context, id string) (string, error) {
	var typ string
	err := q.pool.QueryRow(ctx, `SELECT type FROM requests WHERE id = $1`, id).Scan(&typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading the type of request %s: %w", id, err)
	}
	return typ, nil
}

// Tenant returns the tenant request id belongs to; ErrNotFound when there is no such request.
func (q Requests) Tenant(ctx context.Context, id string) (string, error) {
	var tenant string
	err := q.pool.QueryRow(ctx, `SELECT tenant_id FROM requests WHERE id = $1`, id).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("reading the owner of request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reading the owner of request %s: %w", id, err)
	}
	return tenant, nil
}

// Status returns request id's recorded status; ErrNotFound when there is no such request.
func (Requests) Status(ctx context.Context, db Querier, id string) (string, error) {
	return status(ctx, db, `SELECT status FROM requests WHERE id = $1`, id)
}

// StatusKeyShare is Status that also keeps the row from being deleted until db's transaction
// ends, without holding up the workflow's status updates.
func (Requests) StatusKeyShare(ctx context.Context, db Querier, id string) (string, error) {
	return status(ctx, db, `SELECT status FROM requests WHERE id = $1 FOR KEY SHARE`, id)
}

func status(ctx context.Context, db Querier, sql, id string) (string, error) {
	var s string
	err := db.QueryRow(ctx, sql, id).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading the status of request %s: %w", id, err)
	}
	return s, nil
}

// Export is a request's downloadable package.
type Export struct {
	URI    string
	SHA256 string
	Bytes  int64
}

// SetExport records request id's package.
func (q Requests) SetExport(ctx context.Context, id string, e Export) error {
	if _, err := q.pool.Exec(ctx, `UPDATE requests SET export_uri = $2, export_sha256 = $3, export_bytes = $4 WHERE id = $1`,
		id, e.URI, e.SHA256, e.Bytes); err != nil {
		return fmt.Errorf("recording the export of request %s: %w", id, err)
	}
	return nil
}

// Export returns tenant's request id's package (empty URI when it has none);
// ErrNotFound when there is no such request.
func (q Requests) Export(ctx context.Context, tenant, id string) (Export, error) {
	var uri, sum *string
	var n *int64
	err := q.pool.QueryRow(ctx, `SELECT export_uri, export_sha256, export_bytes FROM requests WHERE id = $1 AND tenant_id = $2`,
		id, tenant).Scan(&uri, &sum, &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return Export{}, ErrNotFound
	}
	if err != nil {
		return Export{}, fmt.Errorf("reading the export of request %s: %w", id, err)
	}
	e := Export{URI: deref(uri), SHA256: deref(sum)}
	if n != nil {
		e.Bytes = *n
	}
	return e, nil
}

// DropExports records that the packages of tenant's requests ids are gone, in the columns and
// in the recorded state, and returns how many requests had one.
func (Requests) DropExports(ctx context.Context, db Querier, tenant string, ids []string) (int64, error) {
	tag, err := db.Exec(ctx, `
		UPDATE requests SET export_uri = NULL, export_sha256 = NULL, export_bytes = NULL, state = state - 'export'
		WHERE id = ANY($1) AND tenant_id = $2 AND export_uri IS NOT NULL`, ids, tenant)
	if err != nil {
		return 0, fmt.Errorf("forgetting export packages: %w", err)
	}
	return tag.RowsAffected(), nil
}

// RequestSummary is one row of a request listing.
type RequestSummary struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	Extended   bool      `json:"extended"`
	Channel    string    `json:"channel,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	DueDate    string    `json:"due_date,omitempty"`
}

// RequestFilter narrows a listing of one tenant's requests; the API, the digest and the
// dashboard share it. Empty fields do not filter.
type RequestFilter struct {
	TenantID  string
	Status    string
	Type      string
	Channel   string
	Open      bool      // only requests whose status is not terminal
	DueBefore time.Time // due_date < DueBefore
	// Outcome keeps requests with at least one connector result of this status (pending,
	// succeeded, failed).
	Outcome string
	Offset  int
	Limit   int
}

// terminalSQL is domain.TerminalStatuses as SQL, written as migration 0027's partial index
// requests_open_due states it, so the planner can prove that index serves Open listings.
const terminalSQL = `status NOT IN ('completed', 'denied', 'canceled')`

// where is the filter's WHERE clause and arguments. Only the conditions that filter are
// written, so every plan (a prepared statement's generic one too) can use the indexes.
func (f RequestFilter) where() (string, []any) {
	w := sqlWhere{}
	w.add("tenant_id = $%d", f.TenantID)
	if f.Open {
		w.conds = append(w.conds, terminalSQL)
	}
	if f.Status != "" {
		w.add("status = $%d", f.Status)
	}
	if f.Type != "" {
		w.add("type = $%d", f.Type)
	}
	if f.Channel != "" {
		w.add("channel = $%d", f.Channel)
	}
	if !f.DueBefore.IsZero() {
		w.add("due_date < $%d::date", f.DueBefore)
	}
	if f.Outcome != "" {
		w.add("state->'connectors' @> jsonb_build_array(jsonb_build_object('status', $%d::text))", f.Outcome)
	}
	return w.String(), w.args
}

// sqlWhere collects the conditions of a WHERE clause and their arguments.
type sqlWhere struct {
	conds []string
	args  []any
}

// add appends a condition whose one placeholder ($%d) takes arg.
func (w *sqlWhere) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, fmt.Sprintf(cond, len(w.args)))
}

func (w *sqlWhere) String() string {
	if len(w.conds) == 0 {
		return "true"
	}
	return strings.Join(w.conds, " AND ")
}

// List returns the requests f selects, soonest due first.
func (q Requests) List(ctx context.Context, f RequestFilter) ([]RequestSummary, error) {
	where, args := f.where()
	args = append(args, f.Limit, f.Offset)
	rows, err := q.pool.Query(ctx, fmt.Sprintf(`
		SELECT id, type, status, extended, channel, received_at, COALESCE(to_char(due_date, 'YYYY-MM-DD'), '')
		FROM requests WHERE %s
		ORDER BY due_date ASC NULLS LAST, received_at ASC
		LIMIT $%d OFFSET $%d`, where, len(args)-1, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("listing requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RequestSummary, error) {
		var s RequestSummary
		err := r.Scan(&s.ID, &s.Type, &s.Status, &s.Extended, &s.Channel, &s.ReceivedAt, &s.DueDate)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing requests: %w", err)
	}
	return out, nil
}

// WeekStats is what a tenant's requests of one type did in one week (Monday, UTC): how many
// arrived, how many were completed, how many of those on or before their due date, and the
// median days from receipt to completion.
type WeekStats struct {
	Week       time.Time
	Type       string
	Received   int
	Completed  int
	OnTime     int
	MedianDays float64 // 0 when none completed
}

// Weekly returns tenant's WeekStats from since on, by week then type. A completed request's
// closing time is its last update, the step that completed it.
func (q Requests) Weekly(ctx context.Context, tenant string, since time.Time) ([]WeekStats, error) {
	rows, err := q.pool.Query(ctx, `
		WITH received AS (
			SELECT date_trunc('week', received_at AT TIME ZONE 'UTC') AS week, type, count(*) AS n
			FROM requests WHERE tenant_id = $1 AND received_at >= $2 GROUP BY 1, 2
		), completed AS (
			SELECT date_trunc('week', updated_at AT TIME ZONE 'UTC') AS week, type, count(*) AS n,
				count(*) FILTER (WHERE due_date IS NOT NULL AND (updated_at AT TIME ZONE 'UTC')::date <= due_date) AS on_time,
				percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - received_at) / 86400) AS median_days
			FROM requests WHERE tenant_id = $1 AND status = 'completed' AND updated_at >= $2 GROUP BY 1, 2
		)
		SELECT COALESCE(r.week, c.week), COALESCE(r.type, c.type), COALESCE(r.n, 0), COALESCE(c.n, 0),
			COALESCE(c.on_time, 0), COALESCE(c.median_days, 0)
		FROM received r FULL JOIN completed c ON c.week = r.week AND c.type = r.type
		ORDER BY 1, 2`, tenant, since)
	if err != nil {
		return nil, fmt.Errorf("counting requests by week: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WeekStats, error) {
		var s WeekStats
		err := r.Scan(&s.Week, &s.Type, &s.Received, &s.Completed, &s.OnTime, &s.MedianDays)
		s.Week = s.Week.UTC()
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("counting requests by week: %w", err)
	}
	return out, nil
}

// TypeStats is WeekStats over a whole period for one type (Week is zero).
type TypeStats = WeekStats

// ByType returns tenant's TypeStats from since on, by type, then for every type together
// (Type "").
func (q Requests) ByType(ctx context.Context, tenant string, since time.Time) ([]TypeStats, error) {
	rows, err := q.pool.Query(ctx, `
		SELECT type,
			count(*) FILTER (WHERE received_at >= $2),
			count(*) FILTER (WHERE done),
			count(*) FILTER (WHERE done AND due_date IS NOT NULL AND (updated_at AT TIME ZONE 'UTC')::date <= due_date),
			COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - received_at) / 86400) FILTER (WHERE done), 0)
		FROM (SELECT *, status = 'completed' AND updated_at >= $2 AS done FROM requests
			WHERE tenant_id = $1 AND (received_at >= $2 OR updated_at >= $2)) r
		GROUP BY GROUPING SETS ((type), ()) ORDER BY type NULLS LAST`, tenant, since)
	if err != nil {
		return nil, fmt.Errorf("counting requests by type: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TypeStats, error) {
		var s TypeStats
		var typ *string
		err := r.Scan(&typ, &s.Received, &s.Completed, &s.OnTime, &s.MedianDays)
		s.Type = deref(typ)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("counting requests by type: %w", err)
	}
	return out, nil
}

// Open lists up to limit started requests, by id after after, whose status is none of
// terminal and whose recorded state is not closed.
func (q Requests) Open(ctx context.Context, after string, terminal []string, limit int) ([]RequestRow, error) {
	rows, err := q.pool.Query(ctx, `
		SELECT id, tenant_id, type, COALESCE(regime, ''), COALESCE(country, ''), extended, state
		FROM requests
		WHERE started AND id > $1 AND status <> ALL($2) AND NOT COALESCE((state->>'closed')::boolean, false)
		ORDER BY id LIMIT $3`, after, terminal, limit)
	if err != nil {
		return nil, fmt.Errorf("listing open requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RequestRow, error) {
		var o RequestRow
		err := r.Scan(&o.ID, &o.TenantID, &o.Type, &o.Regime, &o.Country, &o.Extended, &o.State)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading open requests: %w", err)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// expiredExports selects tenant $1's requests closed ($3: the closed statuses) before $2 whose
// package is still kept.
const expiredExports = `FROM requests WHERE tenant_id = $1 AND export_uri IS NOT NULL AND updated_at < $2
	AND status = ANY($3)`

// ExpiredExports returns up to limit of tenant's requests closed (in one of closed) before
// before whose export is still kept, oldest first.
func (q Requests) ExpiredExports(ctx context.Context, tenant string, closed []string, before time.Time, limit int) ([]string, error) {
	rows, err := q.pool.Query(ctx, `SELECT id `+expiredExports+` ORDER BY updated_at, id LIMIT $4`, tenant, before, closed, limit)
	if err != nil {
		return nil, fmt.Errorf("listing expired exports: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing expired exports: %w", err)
	}
	return ids, nil
}

// CountExpiredExports counts what ExpiredExports would list without a limit.
func (q Requests) CountExpiredExports(ctx context.Context, tenant string, closed []string, before time.Time) (int64, error) {
	var n int64
	if err := q.pool.QueryRow(ctx, `SELECT count(*) `+expiredExports, tenant, before, closed).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting expired exports: %w", err)
	}
	return n, nil
}
