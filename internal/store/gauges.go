package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequestCount is how many of a tenant's requests of one type are in one status.
type RequestCount struct {
	TenantID, Type, Status string
	N                      int64
}

// DueCount counts a tenant's open requests past their due date and due within a week.
type DueCount struct {
	TenantID         string
	Overdue, DueSoon int64
}

// ClockDue is a running breach clock's due time.
type ClockDue struct {
	TenantID, BreachID, Rule string
	Due                      time.Time
}

// Gauges are the read model's numbers for /metrics: aggregates and references only.
type Gauges struct {
	Requests []RequestCount
	Due      []DueCount
	Clocks   []ClockDue
}

// Gauges counts requests by tenant, type and status; open requests (not completed, denied or
// canceled) whose due date is before today, or within the seven days from today (both as dates
// in UTC), by tenant; and the due time of every breach clock that still waits for a
// notification. Three aggregate queries, for a scrape behind a cache.
func (s *Store) Gauges(ctx context.Context, now time.Time, closed []string) (Gauges, error) {
	var g Gauges
	today := now.UTC().Format(time.DateOnly)
	rows, err := s.Pool.Query(ctx, `SELECT tenant_id, type, status, count(*) FROM requests GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		return g, fmt.Errorf("counting requests: %w", err)
	}
	if g.Requests, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RequestCount, error) {
		var c RequestCount
		return c, r.Scan(&c.TenantID, &c.Type, &c.Status, &c.N)
	}); err != nil {
		return g, fmt.Errorf("counting requests: %w", err)
	}
	rows, err = s.Pool.Query(ctx, `
		SELECT tenant_id, count(*) FILTER (WHERE due_date < $1::date),
			count(*) FILTER (WHERE due_date >= $1::date AND due_date <= $1::date + 7)
		FROM requests WHERE due_date IS NOT NULL AND status <> ALL ($2) GROUP BY 1 ORDER BY 1`, today, closed)
	if err != nil {
		return g, fmt.Errorf("counting due requests: %w", err)
	}
	if g.Due, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DueCount, error) {
		var c DueCount
		return c, r.Scan(&c.TenantID, &c.Overdue, &c.DueSoon)
	}); err != nil {
		return g, fmt.Errorf("counting due requests: %w", err)
	}
	rows, err = s.Pool.Query(ctx, `
		SELECT b.tenant_id, c.breach_id, c.rule_id, c.due_at FROM breach_clocks c JOIN breaches b ON b.id = c.breach_id
		WHERE c.due_at IS NOT NULL AND c.status IN ('running', 'escalated') ORDER BY 1, 2, 3`)
	if err != nil {
		return g, fmt.Errorf("reading breach clocks: %w", err)
	}
	if g.Clocks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ClockDue, error) {
		var c ClockDue
		return c, r.Scan(&c.TenantID, &c.BreachID, &c.Rule, &c.Due)
	}); err != nil {
		return g, fmt.Errorf("reading breach clocks: %w", err)
	}
	return g, nil
}
