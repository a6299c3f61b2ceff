package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Notices holds the people a breach is notified to under Art. 34 and the batches their notice
// goes out in (tables breach_recipients and breach_notice_batches, migration 0020). The notice
// workflow's activities write it; the API, the CLI and Mailgun's webhook read and mark it.
type Notices struct{ pool *pgxpool.Pool }

// Notices returns the repository of breach notices.
func (s *Store) Notices() Notices { return Notices{pool: s.Pool} }

// Recipient is one person a breach notice goes to.
type Recipient struct {
	Seq   int64
	Email string
	Phone string
	Name  string
}

// NoticeBatch is one batch of a breach's notice and what became of it.
type NoticeBatch struct {
	BreachID   string
	Run        int
	Batch      int
	Recipients int
	Status     string // claimed, refused, sent, failed
	MessageID  string
	Error      string
	ClaimedAt  time.Time
}

// Batch statuses.
const (
	BatchClaimed = "claimed"
	BatchRefused = "refused"
	BatchSent    = "sent"
	BatchFailed  = "failed"
)

// NoticeProgress counts a breach's recipients by what became of their notice.
type NoticeProgress struct {
	Recipients int64 `json:"recipients"`
	Pending    int64 `json:"pending"`
	Sending    int64 `json:"sending"` // in a batch whose outcome is not recorded yet
	Sent       int64 `json:"sent"`
	Failed     int64 `json:"failed"`
	Delivered  int64 `json:"delivered"`
	Bounced    int64 `json:"bounced"` // Mailgun reported the delivery failed
	Batches    int64 `json:"batches"`
}

// AddRecipients adds people to a breach's notice, after those already there, and returns how
// many were new: a person already listed (by email, in any case) is not listed twice.
func (n Notices) AddRecipients(ctx context.Context, breachID, source string, rs []Recipient) (int64, error) {
	var added int64
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		// One writer at a time per breach: the order numbers follow on.
		var id string
		if err := tx.QueryRow(ctx, `SELECT id FROM breaches WHERE id = $1 FOR UPDATE`, breachID).Scan(&id); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE new_recipients (ord bigint, email text, phone text, name text) ON COMMIT DROP`); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"new_recipients"}, []string{"ord", "email", "phone", "name"},
			pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) { return []any{int64(i), rs[i].Email, rs[i].Phone, rs[i].Name}, nil }))
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO breach_recipients (breach_id, seq, email, phone, name, source)
			SELECT $1, (SELECT coalesce(max(seq), 0) FROM breach_recipients WHERE breach_id = $1) + row_number() OVER (ORDER BY ord),
				email, phone, name, $2
			FROM (SELECT DISTINCT ON (lower(email)) ord, email, phone, name FROM new_recipients
				WHERE NOT EXISTS (SELECT 1 FROM breach_recipients r WHERE r.breach_id = $1 AND lower(r.email) = lower(new_recipients.email))
				ORDER BY lower(email), ord) fresh
			ORDER BY ord`, breachID, source)
		added = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("adding recipients to the notice of breach %s: %w", breachID, err)
	}
	return added, nil
}

// Batch returns batch number batch of a breach's notice run; ErrNotFound if it was never
// claimed.
func (n Notices) Batch(ctx context.Context, breachID string, run, batch int) (NoticeBatch, error) {
	b := NoticeBatch{BreachID: breachID, Run: run, Batch: batch}
	err := n.pool.QueryRow(ctx, `
		SELECT recipients, status, message_id, error, claimed_at FROM breach_notice_batches WHERE breach_id = $1 AND run = $2 AND batch = $3`,
		breachID, run, batch).Scan(&b.Recipients, &b.Status, &b.MessageID, &b.Error, &b.ClaimedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, ErrNotFound
	}
	if err != nil {
		return b, fmt.Errorf("reading batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	return b, nil
}

// Claim takes up to size pending recipients, in order, into batch number batch and records the
// batch as claimed, in one transaction, before anything is sent. It returns the recipients;
// none when nobody is left to notify (and then no batch is recorded). Concurrent claims take
// different people.
func (n Notices) Claim(ctx context.Context, breachID string, run, batch, size int, at time.Time) ([]Recipient, error) {
	var out []Recipient
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH picked AS (
				SELECT seq FROM breach_recipients WHERE breach_id = $1 AND status = 'pending' ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED)
			UPDATE breach_recipients r SET status = 'sending', run = $2, batch = $3 FROM picked
			WHERE r.breach_id = $1 AND r.seq = picked.seq
			RETURNING r.seq, r.email, r.phone, r.name`, breachID, run, batch, size)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, scanRecipient); err != nil || len(out) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO breach_notice_batches (breach_id, run, batch, recipients, status, claimed_at) VALUES ($1, $2, $3, $4, 'claimed', $5)`,
			breachID, run, batch, len(out), at)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	slices.SortFunc(out, func(a, b Recipient) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// BatchRecipients returns the people of a claimed batch, in order.
func (n Notices) BatchRecipients(ctx context.Context, breachID string, run, batch int) ([]Recipient, error) {
	rows, err := n.pool.Query(ctx, `
		SELECT seq, email, phone, name FROM breach_recipients WHERE breach_id = $1 AND run = $2 AND batch = $3 ORDER BY seq`, breachID, run, batch)
	if err != nil {
		return nil, fmt.Errorf("reading batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	out, err := pgx.CollectRows(rows, scanRecipient)
	if err != nil {
		return nil, fmt.Errorf("reading batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	return out, nil
}

// Settle records a batch's outcome: sent (with Mailgun's message id) or failed, for the batch
// and each of its people, in one transaction; or refused, which leaves its people in the batch
// for the next attempt. A batch already sent or failed stays as it is.
func (n Notices) Settle(ctx context.Context, breachID string, run, batch int, status, messageID, reason string, at time.Time) error {
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE breach_notice_batches SET status = $4, message_id = $5, error = $6, done_at = $7
			WHERE breach_id = $1 AND run = $2 AND batch = $3 AND status IN ('claimed', 'refused')`, breachID, run, batch, status, messageID, reason, at)
		if err != nil || tag.RowsAffected() == 0 || status == BatchRefused {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE breach_recipients SET status = $4 WHERE breach_id = $1 AND run = $2 AND batch = $3`, breachID, run, batch, status)
		return err
	})
	if err != nil {
		return fmt.Errorf("recording the outcome of batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	return nil
}

// Delivered records a delivery event from Mailgun for recipient seq of a breach's notice:
// delivered or failed. A later event replaces an earlier one; an unknown recipient is ignored.
func (Notices) Delivered(ctx context.Context, db Querier, breachID string, seq int64, event string, at time.Time) error {
	_, err := db.Exec(ctx, `
		UPDATE breach_recipients SET delivery = $3, delivery_at = $4
		WHERE breach_id = $1 AND seq = $2 AND status = 'sent' AND (delivery_at IS NULL OR delivery_at <= $4)`, breachID, seq, event, at)
	if err != nil {
		return fmt.Errorf("recording a delivery of the notice of breach %s: %w", breachID, err)
	}
	return nil
}

// Progress counts a breach's recipients by what became of their notice.
func (n Notices) Progress(ctx context.Context, breachID string) (NoticeProgress, error) {
	var p NoticeProgress
	err := n.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'sending'),
			count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),
			count(*) FILTER (WHERE delivery = 'delivered'), count(*) FILTER (WHERE delivery = 'failed'),
			(SELECT count(*) FROM breach_notice_batches WHERE breach_id = $1)
		FROM breach_recipients WHERE breach_id = $1`, breachID).
		Scan(&p.Recipients, &p.Pending, &p.Sending, &p.Sent, &p.Failed, &p.Delivered, &p.Bounced, &p.Batches)
	if err != nil {
		return p, fmt.Errorf("counting the notice of breach %s: %w", breachID, err)
	}
	return p, nil
}

func scanRecipient(r pgx.CollectableRow) (x Recipient, err error) {
	err = r.Scan(&x.Seq, &x.Email, &x.Phone, &x.Name)
	return x, err
}
