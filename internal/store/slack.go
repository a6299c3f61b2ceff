package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SlackMessages are the requests' Slack approval messages (table slack_messages).
type SlackMessages struct{ pool *pgxpool.Pool }

// SlackMessages returns the Slack messages' repository.
func (s *Store) SlackMessages() SlackMessages { return SlackMessages{pool: s.Pool} }

// SlackMessage is where a request's approval message is in Slack.
type SlackMessage struct {
	RequestID string
	TenantID  string
	Channel   string
	TS        string
	PostedAt  time.Time
}

// Get returns the approval message of a request; ErrNotFound when none was posted.
func (q SlackMessages) Get(ctx context.Context, requestID string) (SlackMessage, error) {
	m := SlackMessage{RequestID: requestID}
	err := q.pool.QueryRow(ctx, `SELECT tenant_id, channel, ts, posted_at FROM slack_messages WHERE request_id = $1`,
		requestID).Scan(&m.TenantID, &m.Channel, &m.TS, &m.PostedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return SlackMessage{}, ErrNotFound
	}
	if err != nil {
		return SlackMessage{}, fmt.Errorf("looking up the Slack message of request %s: %w", requestID, err)
	}
	return m, nil
}

// Save records a posted message; a request that already has one keeps its first.
func (q SlackMessages) Save(ctx context.Context, m SlackMessage) error {
	_, err := q.pool.Exec(ctx, `
		INSERT INTO slack_messages (request_id, tenant_id, channel, ts, posted_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO NOTHING`,
		m.RequestID, m.TenantID, m.Channel, m.TS, m.PostedAt)
	if err != nil {
		return fmt.Errorf("recording the Slack message of request %s: %w", m.RequestID, err)
	}
	return nil
}

// SlackAlerts are the Slack posts of reminders, escalations and digests (table slack_alerts),
// one per key.
type SlackAlerts struct{ pool *pgxpool.Pool }

// SlackAlerts returns the Slack alerts' repository.
func (s *Store) SlackAlerts() SlackAlerts { return SlackAlerts{pool: s.Pool} }

// Posted says whether the post of key was made.
func (q SlackAlerts) Posted(ctx context.Context, key string) (bool, error) {
	var n int
	if err := q.pool.QueryRow(ctx, `SELECT count(*) FROM slack_alerts WHERE key = $1`, key).Scan(&n); err != nil {
		return false, fmt.Errorf("looking up the Slack post %s: %w", key, err)
	}
	return n > 0, nil
}

// Save records the post of key; a key recorded already keeps its first.
func (q SlackAlerts) Save(ctx context.Context, key, tenantID string, m SlackMessage) error {
	_, err := q.pool.Exec(ctx, `
		INSERT INTO slack_alerts (key, tenant_id, channel, ts, posted_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING`,
		key, tenantID, m.Channel, m.TS, m.PostedAt)
	if err != nil {
		return fmt.Errorf("recording the Slack post %s: %w", key, err)
	}
	return nil
}
