package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// NoticeText is the text of a breach's notice to one person known only by a phone, and what
// became of it (table breach_notice_texts, migration 0033). Twilio sends one text a call, so
// each is claimed and settled on its own; Status takes the batch statuses (BatchClaimed, ...).
type NoticeText struct {
	Seq       int64
	Phone     string
	Run       int
	Batch     int // the text batch of the run that claimed it last
	Status    string
	SID       string // Twilio's message SID, once sent
	Error     string // why it failed or was released: Twilio's status and code, never the number
	ClaimedAt time.Time
}

// Texts returns the texts text batch batch of a notice run claimed, in order; none if it
// claimed none.
func (n Notices) Texts(ctx context.Context, breachID string, run, batch int) ([]NoticeText, error) {
	out, err := n.texts(ctx, n.pool, `t.run = $2 AND t.batch = $3`, breachID, run, batch)
	if err != nil {
		return nil, fmt.Errorf("reading text batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	return out, nil
}

// UnsettledTexts returns the texts of runs from..to that were claimed and have no final outcome
// (claimed or refused), in order.
func (n Notices) UnsettledTexts(ctx context.Context, breachID string, from, to int) ([]NoticeText, error) {
	out, err := n.texts(ctx, n.pool, `t.run BETWEEN $2 AND $3 AND t.status IN ('claimed', 'refused')`, breachID, from, to)
	if err != nil {
		return nil, fmt.Errorf("reading the unsettled texts of the notice of breach %s: %w", breachID, err)
	}
	return out, nil
}

func (Notices) texts(ctx context.Context, db Querier, where, breachID string, a, b int) ([]NoticeText, error) {
	rows, err := db.Query(ctx, `
		SELECT t.seq, r.phone, t.run, t.batch, t.status, t.sid, t.error, t.claimed_at FROM breach_notice_texts t
		JOIN breach_recipients r ON r.breach_id = t.breach_id AND r.seq = t.seq
		WHERE t.breach_id = $1 AND `+where+` ORDER BY t.seq`, breachID, a, b)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (x NoticeText, err error) {
		err = r.Scan(&x.Seq, &x.Phone, &x.Run, &x.Batch, &x.Status, &x.SID, &x.Error, &x.ClaimedAt)
		return x, err
	})
}

// ClaimTexts takes the next people to be told by text, up to size, into text batch batch of a
// notice run and records each as claimed, before Twilio is called. People whose text was
// released are taken first, then those never claimed, in order. It returns the texts claimed;
// none when nobody is left to text. Claims of one breach take turns.
func (n Notices) ClaimTexts(ctx context.Context, breachID string, run, batch, size int, at time.Time) ([]NoticeText, error) {
	var out []NoticeText
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		if err := lockBreach(ctx, tx, breachID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE breach_notice_texts SET run = $2, batch = $3, status = 'claimed', sid = '', claimed_at = $4, done_at = NULL
			WHERE breach_id = $1 AND seq IN (SELECT seq FROM breach_notice_texts WHERE breach_id = $1 AND status = 'released' ORDER BY seq LIMIT $5)`,
			breachID, run, batch, at, size)
		if err != nil {
			return err
		}
		if left := size - int(tag.RowsAffected()); left > 0 {
			_, err = tx.Exec(ctx, `
				INSERT INTO breach_notice_texts (breach_id, seq, run, batch, status, claimed_at)
				SELECT $1, seq, $2, $3, 'claimed', $4 FROM breach_recipients
				WHERE breach_id = $1 AND channel = 'sms' AND forgotten_at IS NULL
					AND seq > (SELECT coalesce(max(seq), 0) FROM breach_notice_texts WHERE breach_id = $1)
				ORDER BY seq LIMIT $5`, breachID, run, batch, at, left)
			if err != nil {
				return err
			}
		}
		out, err = n.texts(ctx, tx, `t.run = $2 AND t.batch = $3`, breachID, run, batch)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming text batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	return out, nil
}

// SettleText records what became of one person's text: sent (with Twilio's SID) or failed for
// good; refused (Twilio answered and sent nothing: the next attempt sends it); or released
// (nothing was sent), which gives the person to the next claim. A text already sent, failed or
// released stays as it is.
func (n Notices) SettleText(ctx context.Context, breachID string, seq int64, status, sid, reason string, at time.Time) error {
	_, err := n.pool.Exec(ctx, `
		UPDATE breach_notice_texts SET status = $3, sid = $4, error = $5, done_at = $6
		WHERE breach_id = $1 AND seq = $2 AND status IN ('claimed', 'refused')`, breachID, seq, status, sid, reason, at)
	if err != nil {
		return fmt.Errorf("recording a text of the notice of breach %s: %w", breachID, err)
	}
	return nil
}

// TextBody returns the body of a notice run's texts: the one recorded first, else body, which
// it records.
func (n Notices) TextBody(ctx context.Context, breachID string, run int, body string) (string, error) {
	err := n.pool.QueryRow(ctx, `
		WITH added AS (INSERT INTO breach_notice_text_runs (breach_id, run, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING body)
		SELECT body FROM added UNION ALL SELECT body FROM breach_notice_text_runs WHERE breach_id = $1 AND run = $2`,
		breachID, run, body).Scan(&body)
	if err != nil {
		return "", fmt.Errorf("recording the text of notice run %d of breach %s: %w", run, breachID, err)
	}
	return body, nil
}

// TextBodies returns the bodies runs from..to of a breach's notice texted, by run, and the
// breach's tenant.
func (n Notices) TextBodies(ctx context.Context, breachID string, from, to int) (tenant string, bodies map[int]string, err error) {
	if err = n.pool.QueryRow(ctx, `SELECT tenant_id FROM breaches WHERE id = $1`, breachID).Scan(&tenant); err != nil {
		return "", nil, fmt.Errorf("reading the tenant of breach %s: %w", breachID, err)
	}
	rows, err := n.pool.Query(ctx, `SELECT run, body FROM breach_notice_text_runs WHERE breach_id = $1 AND run BETWEEN $2 AND $3`, breachID, from, to)
	if err != nil {
		return "", nil, fmt.Errorf("reading the texts of the notice of breach %s: %w", breachID, err)
	}
	bodies = map[int]string{}
	var run int
	var body string
	_, err = pgx.ForEachRow(rows, []any{&run, &body}, func() error { bodies[run] = body; return nil })
	if err != nil {
		return "", nil, fmt.Errorf("reading the texts of the notice of breach %s: %w", breachID, err)
	}
	return tenant, bodies, nil
}

// TextsLeft counts the people of a breach's notice to be told by text and not claimed (never,
// or released since).
func (n Notices) TextsLeft(ctx context.Context, breachID string) (int64, error) {
	var left int64
	err := n.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM breach_recipients WHERE breach_id = $1 AND channel = 'sms' AND forgotten_at IS NULL
				AND seq > (SELECT coalesce(max(seq), 0) FROM breach_notice_texts WHERE breach_id = $1))
			+ (SELECT count(*) FROM breach_notice_texts WHERE breach_id = $1 AND status = 'released')`, breachID).Scan(&left)
	if err != nil {
		return 0, fmt.Errorf("counting the texts left of the notice of breach %s: %w", breachID, err)
	}
	return left, nil
}

// TextDelivered records the final status Twilio's status callback gave for the text of
// recipient seq of a breach's notice, with Twilio's SID: delivered or failed (undelivered),
// which makes their notice final, so their phone is forgotten in the same write. A text still
// claimed (its answer not recorded yet) is recorded sent with the SID: the callback proves it
// was. A later event replaces an earlier one; an unknown text, one with another SID, one not
// sent, or one of a breach of a tenant not in tenants (those the calling instance serves) is
// ignored.
func (Notices) TextDelivered(ctx context.Context, db Querier, tenants []string, breachID string, seq int64, sid, event string, at time.Time) error {
	_, err := db.Exec(ctx, `
		WITH t AS (
			UPDATE breach_notice_texts SET status = 'sent', sid = $3, done_at = coalesce(done_at, $5)
			WHERE breach_id = $1 AND seq = $2 AND (status = 'claimed' OR (status = 'sent' AND sid = $3))
				AND EXISTS (SELECT 1 FROM breaches b WHERE b.id = $1 AND b.tenant_id = ANY($6))
			RETURNING seq)
		UPDATE breach_recipients SET delivery = $4, delivery_at = $5, `+forget+`
		WHERE breach_id = $1 AND seq IN (SELECT seq FROM t) AND channel = 'sms' AND (delivery_at IS NULL OR delivery_at <= $5)`,
		breachID, seq, sid, event, at, tenants)
	if err != nil {
		return fmt.Errorf("recording a delivery of a text of the notice of breach %s: %w", breachID, err)
	}
	return nil
}
