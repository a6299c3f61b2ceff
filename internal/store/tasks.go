package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Tasks are the connector runners' results by idempotency key (table connector_tasks): a
// command delivered again is answered from here instead of acting twice.
type Tasks struct{ pool *pgxpool.Pool }

// Tasks returns the connector tasks' repository.
func (s *Store) Tasks() Tasks { return Tasks{pool: s.Pool} }

// Task is one connector action done.
type Task struct {
	Connector      string
	IdempotencyKey string
	RequestID      string
	Action         string
	Output         any // stored as JSON
}

// Output returns the stored output (JSON) of connector's task key; ErrNotFound when there is
// none.
func (q Tasks) Output(ctx context.Context, connector, key string) ([]byte, error) {
	var raw []byte
	err := q.pool.QueryRow(ctx, `SELECT output FROM connector_tasks WHERE connector = $1 AND idempotency_key = $2`,
		connector, key).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("looking up task %s: %w", key, err)
	}
	return raw, nil
}

// Remember stores t's output; a task already stored keeps its first output.
func (q Tasks) Remember(ctx context.Context, t Task) error {
	_, err := q.pool.Exec(ctx, `
		INSERT INTO connector_tasks (connector, idempotency_key, request_id, action, output)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		t.Connector, t.IdempotencyKey, t.RequestID, t.Action, t.Output)
	if err != nil {
		return fmt.Errorf("recording task %s: %w", t.IdempotencyKey, err)
	}
	return nil
}
