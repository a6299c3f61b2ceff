package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier is a pool or a caller's transaction: an append inside a transaction commits or rolls
// back with the caller's other writes.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Event is one entry of the audit trail. It holds references (request, breach, subject
// reference), never personal data.
type Event struct {
	ID  int64  `json:"id"`
	Key string `json:"event_key,omitempty"` // idempotency: a second append with the same key records nothing
	// TenantID may be left empty for an event about a request: it is then the request's.
	TenantID   string         `json:"tenant_id"`
	At         time.Time      `json:"occurred_at"` // zero: now
	Actor      string         `json:"actor"`
	Action     string         `json:"action"`
	RequestID  string         `json:"request_id,omitempty"`
	BreachID   string         `json:"breach_id,omitempty"`
	SubjectRef string         `json:"subject_ref,omitempty"` // crypto.SubjectHash of the subject
	Detail     map[string]any `json:"detail"`
	Seq        int64          `json:"seq"`
	PrevHash   string         `json:"prev_hash"`
	Hash       string         `json:"hash"`
}

// Audit is the audit trail (tables audit_events and audit_chain_heads). PostgreSQL chains each
// appended event to its tenant's previous one and refuses updates and deletes (migration 0013).
type Audit struct{ pool *pgxpool.Pool }

// Audit returns the audit trail's repository.
func (s *Store) Audit() Audit { return Audit{pool: s.Pool} }

// Append records e through db (the pool or the caller's transaction) and reports whether it was
// recorded: false when an event with its key already exists (a retry), or when e leaves the
// tenant to a request that does not exist.
func (Audit) Append(ctx context.Context, db Querier, e Event) (bool, error) {
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	detail, err := json.Marshal(e.Detail)
	if err != nil {
		return false, fmt.Errorf("encoding the detail of audit event %s: %w", e.Action, err)
	}
	var at any
	if !e.At.IsZero() {
		at = e.At
	}
	tag, err := db.Exec(ctx, `
		INSERT INTO audit_events (event_key, tenant_id, occurred_at, actor, action, request_id, breach_id, subject_ref, detail)
		SELECT $1, t.tenant_id, COALESCE($3::timestamptz, now()), $4, $5, $6, $7, $8, $9
		FROM (SELECT CASE WHEN $2::text = '' AND $6::text IS NOT NULL
			THEN (SELECT tenant_id FROM requests WHERE id = $6) ELSE $2 END AS tenant_id) t
		WHERE t.tenant_id IS NOT NULL
		ON CONFLICT DO NOTHING`,
		nullable(e.Key), e.TenantID, at, e.Actor, e.Action, nullable(e.RequestID), nullable(e.BreachID), nullable(e.SubjectRef), detail)
	if err != nil {
		return false, fmt.Errorf("writing the audit event %s: %w", e.Action, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Recorded reports whether an event with this key is in the trail.
func (a Audit) Recorded(ctx context.Context, key string) (bool, error) {
	var ok bool
	err := a.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_events WHERE event_key = $1)`, key).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("looking up audit event %s: %w", key, err)
	}
	return ok, nil
}

// AuditFilter selects events; the API, the CLI and the dashboard share it. Empty fields do not
// filter. Events come in chain order (oldest first) from After on, or newest first before
// Before; Limit caps the page (default 100).
type AuditFilter struct {
	TenantID   string
	Actor      string
	Action     string
	RequestID  string
	SubjectRef string
	Since      time.Time // occurred_at >= Since
	Until      time.Time // occurred_at < Until
	Before     int64     // cursor: events with a smaller id, newest first
	Limit      int
}

// List returns the events f selects, newest first.
func (a Audit) List(ctx context.Context, f AuditFilter) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	where, args := f.where()
	args = append(args, f.Limit)
	// Only the conditions that filter are written, so each can use its index (migration 0027).
	from := "audit_events WHERE " + where
	if !f.Until.IsZero() {
		// A period that ended in the past: left to itself the planner walks the newest events
		// back by id hoping to meet the period soon, through millions of rows (README,
		// "Performance"). Its events are read by time instead, then ordered.
		from = "(SELECT * FROM audit_events WHERE " + where + " OFFSET 0) e"
	}
	rows, err := a.pool.Query(ctx, fmt.Sprintf(`
		SELECT id, COALESCE(event_key, ''), tenant_id, occurred_at, actor, action, COALESCE(request_id, ''),
			COALESCE(breach_id, ''), COALESCE(subject_ref, ''), detail, seq, prev_hash, hash
		FROM %s
		ORDER BY id DESC
		LIMIT $%d`, from, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("listing audit events: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.ID, &e.Key, &e.TenantID, &e.At, &e.Actor, &e.Action, &e.RequestID, &e.BreachID, &e.SubjectRef, &e.Detail, &e.Seq, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("reading audit events: %w", err)
		}
		if e.Detail == nil {
			e.Detail = map[string]any{}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading audit events: %w", err)
	}
	return out, nil
}

func (f AuditFilter) where() (string, []any) {
	w := sqlWhere{}
	for _, c := range []struct {
		cond, v string
	}{{"tenant_id = $%d", f.TenantID}, {"actor = $%d", f.Actor}, {"action = $%d", f.Action}, {"request_id = $%d", f.RequestID}, {"subject_ref = $%d", f.SubjectRef}} {
		if c.v != "" {
			w.add(c.cond, c.v)
		}
	}
	if !f.Since.IsZero() {
		w.add("occurred_at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		w.add("occurred_at < $%d", f.Until)
	}
	if f.Before > 0 {
		w.add("id < $%d", f.Before)
	}
	return w.String(), w.args
}

// BrokenLink is the first place where a tenant's chain does not hold.
type BrokenLink struct {
	TenantID string
	EventID  int64 // 0: the chain head
	EventKey string
	Seq      int64
	Problem  string
}

func (b *BrokenLink) Error() string {
	var at string
	switch {
	case b.EventID == 0:
		at = "the chain head"
	case b.EventKey != "":
		at = fmt.Sprintf("event %d (seq %d, key %s)", b.EventID, b.Seq, b.EventKey)
	default:
		at = fmt.Sprintf("event %d (seq %d)", b.EventID, b.Seq)
	}
	return fmt.Sprintf("audit chain of tenant %q broken at %s: %s", b.TenantID, at, b.Problem)
}

// Verify checks the chain of tenant (every tenant when empty): each event's hash matches its
// fields, links to the event before it, and follows it in sequence, and the last event is the
// chain head. It returns the number of events checked and a *BrokenLink for the first break.
func (a Audit) Verify(ctx context.Context, tenant string) (int, error) {
	tenants := []string{tenant}
	if tenant == "" {
		rows, err := a.pool.Query(ctx, `SELECT tenant_id FROM audit_chain_heads UNION SELECT DISTINCT tenant_id FROM audit_events ORDER BY 1`)
		if err != nil {
			return 0, fmt.Errorf("listing audit chains: %w", err)
		}
		tenants, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return 0, fmt.Errorf("listing audit chains: %w", err)
		}
	}
	n := 0
	for _, t := range tenants {
		c, err := a.verifyTenant(ctx, t)
		n += c
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

func (a Audit) verifyTenant(ctx context.Context, tenant string) (int, error) {
	rows, err := a.pool.Query(ctx, `
		SELECT id, COALESCE(event_key, ''), seq, prev_hash, hash,
			lethe_audit_hash(prev_hash, seq, tenant_id, event_key, occurred_at, actor, action, request_id, breach_id, subject_ref, detail)
		FROM audit_events WHERE tenant_id = $1 ORDER BY seq, id`, tenant)
	if err != nil {
		return 0, fmt.Errorf("reading the audit chain of tenant %q: %w", tenant, err)
	}
	defer rows.Close()
	seq, hash, n := int64(0), genesis, 0
	for rows.Next() {
		var id, s int64
		var key, prev, h, want string
		if err := rows.Scan(&id, &key, &s, &prev, &h, &want); err != nil {
			return n, fmt.Errorf("reading the audit chain of tenant %q: %w", tenant, err)
		}
		broken := func(problem string) error {
			return &BrokenLink{TenantID: tenant, EventID: id, EventKey: key, Seq: s, Problem: problem}
		}
		switch {
		case s <= seq:
			return n, broken(fmt.Sprintf("sequence %d repeats or goes back after %d: events were reordered or inserted", s, seq))
		case s > seq+1:
			return n, broken(fmt.Sprintf("sequence jumps from %d to %d: an event was deleted", seq, s))
		case h != want:
			return n, broken("its fields do not match its hash: the event was edited or moved")
		case prev != hash:
			return n, broken("its previous hash is not the hash of the event before it: events were reordered or replaced")
		}
		seq, hash = s, h
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("reading the audit chain of tenant %q: %w", tenant, err)
	}
	var headSeq int64
	var headHash string
	err = a.pool.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_heads WHERE tenant_id = $1`, tenant).Scan(&headSeq, &headHash)
	if errors.Is(err, pgx.ErrNoRows) {
		headSeq, headHash = 0, genesis
	} else if err != nil {
		return n, fmt.Errorf("reading the audit chain head of tenant %q: %w", tenant, err)
	}
	switch {
	case headSeq != seq:
		return n, &BrokenLink{TenantID: tenant, Seq: headSeq, Problem: fmt.Sprintf("the head is at sequence %d but the last event is %d: the latest events were deleted", headSeq, seq)}
	case headHash != hash:
		return n, &BrokenLink{TenantID: tenant, Seq: headSeq, Problem: "the head's hash is not the last event's: the last event was replaced"}
	}
	return n, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
