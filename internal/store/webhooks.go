package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Webhooks are the outgoing webhook deliveries (table webhook_deliveries).
type Webhooks struct{ pool *pgxpool.Pool }

// Webhooks returns the webhook deliveries' repository.
func (s *Store) Webhooks() Webhooks { return Webhooks{pool: s.Pool} }

// The states of a delivery.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead"
)

// Delivery is one event to POST to one subscription.
type Delivery struct {
	ID           string    `json:"id"`
	TenantID     string    `json:"tenant_id"`
	Subscription string    `json:"subscription"`
	EventID      string    `json:"event_id"`
	EventType    string    `json:"event_type"`
	RequestID    string    `json:"request_id,omitempty"`
	BreachID     string    `json:"breach_id,omitempty"`
	Body         []byte    `json:"-"`
	Partition    int       `json:"source_partition"`
	Offset       int64     `json:"source_offset"`
	State        string    `json:"state"`
	Attempts     int       `json:"attempts"`
	NextAttempt  time.Time `json:"next_attempt_at"`
	LastStatus   int       `json:"last_status,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	FinishedAt   time.Time `json:"finished_at,omitzero"`
}

const deliveryColumns = `id, tenant_id, subscription, event_id, event_type, COALESCE(request_id, ''), COALESCE(breach_id, ''),
	body, source_partition, source_offset, state, attempts, next_attempt_at, COALESCE(last_status, 0), COALESCE(last_error, ''),
	created_at, COALESCE(finished_at, 'epoch'::timestamptz)`

func scanDelivery(row pgx.Row) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.ID, &d.TenantID, &d.Subscription, &d.EventID, &d.EventType, &d.RequestID, &d.BreachID, &d.Body,
		&d.Partition, &d.Offset, &d.State, &d.Attempts, &d.NextAttempt, &d.LastStatus, &d.LastError, &d.CreatedAt, &d.FinishedAt)
	if d.FinishedAt.Equal(time.Unix(0, 0)) {
		d.FinishedAt = time.Time{}
	}
	return d, err
}

// Enqueue records deliveries due at once; one already recorded (the event read again) is
// left as it is.
func (q Webhooks) Enqueue(ctx context.Context, ds []Delivery) error {
	for _, d := range ds {
		_, err := q.pool.Exec(ctx, `
			INSERT INTO webhook_deliveries (id, tenant_id, subscription, event_id, event_type, request_id, breach_id, body,
				source_partition, source_offset, next_attempt_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (id) DO NOTHING`,
			d.ID, d.TenantID, d.Subscription, d.EventID, d.EventType, nullable(d.RequestID), nullable(d.BreachID), d.Body,
			d.Partition, d.Offset, d.CreatedAt)
		if err != nil {
			return fmt.Errorf("recording webhook delivery %s: %w", d.ID, err)
		}
	}
	return nil
}

// Claim takes up to limit pending deliveries due at now and moves their next attempt to
// now+lease, so another delivery process (or this one after a crash) tries them only once the
// lease has run out.
func (q Webhooks) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	rows, err := q.pool.Query(ctx, `
		UPDATE webhook_deliveries SET next_attempt_at = $2
		WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryColumns, now, now.Add(lease), limit)
	if err != nil {
		return nil, fmt.Errorf("claiming webhook deliveries: %w", err)
	}
	return collectDeliveries(rows)
}

func collectDeliveries(rows pgx.Rows) ([]Delivery, error) {
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("reading webhook deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading webhook deliveries: %w", err)
	}
	return out, nil
}

// Attempt is the outcome of one attempt at a delivery.
type Attempt struct {
	At     time.Time
	Status int    // the HTTP status, 0 when none came back
	Error  string // why it failed; empty when delivered
	// Next is when to try again; zero finishes the delivery (delivered, or dead when Error is set).
	Next time.Time
}

// Record writes the outcome of an attempt and, when it finishes the delivery, its audit event,
// in one transaction.
func (q Webhooks) Record(ctx context.Context, d Delivery, a Attempt) error {
	return pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		state, next, finished := DeliveryPending, a.Next, any(nil)
		switch {
		case a.Next.IsZero() && a.Error == "":
			state, next, finished = DeliveryDelivered, a.At, a.At
		case a.Next.IsZero():
			state, next, finished = DeliveryDead, a.At, a.At
		}
		tag, err := tx.Exec(ctx, `
			UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, next_attempt_at = $3,
				last_status = NULLIF($4, 0), last_error = NULLIF($5, ''), finished_at = $6
			WHERE id = $1 AND state = 'pending'`, d.ID, state, next, a.Status, a.Error, finished)
		if err != nil {
			return fmt.Errorf("recording an attempt at webhook delivery %s: %w", d.ID, err)
		}
		if tag.RowsAffected() == 0 || state == DeliveryPending {
			return nil
		}
		action := "webhook.delivered"
		if state == DeliveryDead {
			action = "webhook.dead_lettered"
		}
		detail := map[string]any{"subscription": d.Subscription, "event_id": d.EventID, "event_type": d.EventType,
			"delivery_id": d.ID, "attempts": d.Attempts + 1}
		if a.Status != 0 {
			detail["status"] = a.Status
		}
		if a.Error != "" {
			detail["reason"] = a.Error
		}
		_, err = Audit{}.Append(ctx, tx, Event{Key: "webhook:" + d.ID + ":" + state, TenantID: d.TenantID, At: a.At,
			Actor: "lethe (webhooks)", Action: action, RequestID: d.RequestID, BreachID: d.BreachID, Detail: detail})
		return err
	})
}

// DeliveryFilter selects deliveries; empty fields do not filter. Newest first; Limit caps the
// page (default 100).
type DeliveryFilter struct {
	TenantID     string
	Subscription string
	State        string
	RequestID    string
	Limit        int
}

// List returns the deliveries f selects, newest first.
func (q Webhooks) List(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := q.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE ($1 = '' OR tenant_id = $1) AND ($2 = '' OR subscription = $2) AND ($3 = '' OR state = $3)
			AND ($4 = '' OR request_id = $4)
		ORDER BY created_at DESC, id LIMIT $5`, f.TenantID, f.Subscription, f.State, f.RequestID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("listing webhook deliveries: %w", err)
	}
	return collectDeliveries(rows)
}

// Redeliver puts a dead delivery back in the queue, due at now, with its attempts counted
// afresh; ErrNotFound when no dead delivery has this ID.
func (q Webhooks) Redeliver(ctx context.Context, id string, now time.Time) error {
	tag, err := q.pool.Exec(ctx, `
		UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $2, finished_at = NULL
		WHERE id = $1 AND state = 'dead'`, id, now)
	if err != nil {
		return fmt.Errorf("redelivering webhook delivery %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// HeldCommands are the commands of webhook connector instances waiting for their endpoint's
// callback (table connector_held_commands).
type HeldCommands struct{ pool *pgxpool.Pool }

// HeldCommands returns the held commands' repository.
func (s *Store) HeldCommands() HeldCommands { return HeldCommands{pool: s.Pool} }

// Hold keeps a command (its JSON as published) until its callback; a later attempt under the
// same key replaces the earlier one, whose task token no longer waits.
func (q HeldCommands) Hold(ctx context.Context, connector, key string, command []byte, at time.Time) error {
	_, err := q.pool.Exec(ctx, `
		INSERT INTO connector_held_commands (connector, idempotency_key, command, held_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (connector, idempotency_key) DO UPDATE SET command = EXCLUDED.command, held_at = EXCLUDED.held_at`,
		connector, key, command, at)
	if err != nil {
		return fmt.Errorf("holding the command %s for its callback: %w", key, err)
	}
	return nil
}

// Get returns the command held under connector and key; ErrNotFound when none is.
func (q HeldCommands) Get(ctx context.Context, connector, key string) ([]byte, error) {
	var raw []byte
	err := q.pool.QueryRow(ctx, `SELECT command FROM connector_held_commands WHERE connector = $1 AND idempotency_key = $2`,
		connector, key).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("looking up the held command %s: %w", key, err)
	}
	return raw, nil
}

// Since returns the commands of connector held at or after t, for their heartbeats.
func (q HeldCommands) Since(ctx context.Context, connector string, t time.Time) ([][]byte, error) {
	rows, err := q.pool.Query(ctx, `SELECT command FROM connector_held_commands WHERE connector = $1 AND held_at >= $2`, connector, t)
	if err != nil {
		return nil, fmt.Errorf("listing held commands of %s: %w", connector, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}

// Release forgets the held command once its result is published.
func (q HeldCommands) Release(ctx context.Context, connector, key string) error {
	if _, err := q.pool.Exec(ctx, `DELETE FROM connector_held_commands WHERE connector = $1 AND idempotency_key = $2`, connector, key); err != nil {
		return fmt.Errorf("releasing the held command %s: %w", key, err)
	}
	return nil
}
