package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/internal/crypto"
)

// Notices holds the people a breach is notified to under Art. 34 and the batches their notice
// goes out in (tables breach_recipients and breach_notice_batches, migration 0020). The notice
// workflow's activities write it; the API, the CLI and Mailgun's webhook read and mark it.
type Notices struct{ pool *pgxpool.Pool }

// Notices returns the repository of breach notices.
func (s *Store) Notices() Notices { return Notices{pool: s.Pool} }

// Recipient is one person a breach notice goes to: by email, or, with no Email, by text to
// Phone (then in E.164 form).
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
	Status     string // claimed, refused, sent, failed, released
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
	// BatchReleased: not sent, its people go to the next claim (the reason is in Error).
	BatchReleased = "released"
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
	Forgotten  int64 `json:"forgotten"` // people whose address was cleared once their notice was final
	// Of all these, the people told by text (known only by a phone): listed, and their texts
	// sent and failed (Twilio refused the number for good).
	Texts      int64 `json:"texts"`
	Texted     int64 `json:"texted"`
	TextFailed int64 `json:"text_failed"`
}

// AddRecipients adds people to a breach's notice, after those already there, and returns how
// many were new: a person already listed (by email, in any case, even once their address was
// forgotten) is not listed twice. signingKey keys their address_key (crypto.RecipientKey).
func (n Notices) AddRecipients(ctx context.Context, signingKey, breachID, source string, rs []Recipient) (int64, error) {
	var added int64
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		// One writer at a time per breach: the order numbers follow on.
		if err := lockBreach(ctx, tx, breachID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE new_recipients (ord bigint, email text, phone text, name text, key bytea) ON COMMIT DROP`); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"new_recipients"}, []string{"ord", "email", "phone", "name", "key"},
			pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
				return []any{int64(i), rs[i].Email, rs[i].Phone, rs[i].Name, crypto.RecipientKey(signingKey, breachID, rs[i].Email, rs[i].Phone)}, nil
			}))
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO breach_recipients (breach_id, seq, email, phone, name, source, address_key, channel)
			SELECT $1, (SELECT coalesce(max(seq), 0) FROM breach_recipients WHERE breach_id = $1) + row_number() OVER (ORDER BY ord),
				nullif(email, ''), phone, name, $2, key, CASE WHEN email = '' THEN 'sms' ELSE 'email' END
			FROM (SELECT DISTINCT ON (key) ord, email, phone, name, key
				FROM new_recipients keyed
				WHERE NOT EXISTS (SELECT 1 FROM breach_recipients r WHERE r.breach_id = $1 AND r.address_key = keyed.key)
					AND NOT EXISTS (SELECT 1 FROM breach_recipients r WHERE r.breach_id = $1 AND r.address_key = `+legacyAddressKey+`)
				ORDER BY key, ord) fresh
			ORDER BY ord`, breachID, source)
		added = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("adding recipients to the notice of breach %s: %w", breachID, err)
	}
	return added, nil
}

// legacyAddressKey is the SQL of the unkeyed address_key that people listed before keyed ones
// (crypto.RecipientKey) still carry: a SHA-256 of the breach ($1) and the lower-cased email,
// or "tel:" and the phone. Checked too, so nobody listed then is listed, and told, again.
const legacyAddressKey = `sha256(convert_to($1 || ':' || coalesce(nullif(lower(keyed.email), ''), 'tel:' || keyed.phone), 'UTF8'))`

func lockBreach(ctx context.Context, tx pgx.Tx, breachID string) error {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM breaches WHERE id = $1 FOR UPDATE`, breachID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
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

// Unsettled returns the batches of runs from..to of a breach's notice that were claimed and
// have no final outcome (claimed or refused), in order.
func (n Notices) Unsettled(ctx context.Context, breachID string, from, to int) ([]NoticeBatch, error) {
	rows, err := n.pool.Query(ctx, `
		SELECT run, batch, recipients, status, message_id, error, claimed_at FROM breach_notice_batches
		WHERE breach_id = $1 AND run BETWEEN $2 AND $3 AND status IN ('claimed', 'refused') ORDER BY run, batch`, breachID, from, to)
	if err != nil {
		return nil, fmt.Errorf("reading the unsettled batches of the notice of breach %s: %w", breachID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (b NoticeBatch, err error) {
		b.BreachID = breachID
		err = r.Scan(&b.Run, &b.Batch, &b.Recipients, &b.Status, &b.MessageID, &b.Error, &b.ClaimedAt)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the unsettled batches of the notice of breach %s: %w", breachID, err)
	}
	return out, nil
}

// Claim takes the next people, up to size, into batch number batch and records the batch as
// claimed, before anything is sent. The people of a released batch are taken first, as that
// batch was, then those never claimed, in order. It returns the recipients; none when nobody is
// left to notify (and then no batch is recorded). A batch is a range of recipient numbers, so a
// claim writes one row whatever its size; claims of one breach take turns.
func (n Notices) Claim(ctx context.Context, breachID string, run, batch, size int, at time.Time) ([]Recipient, error) {
	var out []Recipient
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		if err := lockBreach(ctx, tx, breachID); err != nil {
			return err
		}
		var lo, hi int64
		err := tx.QueryRow(ctx, `
			SELECT first_seq, last_seq FROM breach_notice_batches b WHERE breach_id = $1 AND status = 'released'
				AND NOT EXISTS (SELECT 1 FROM breach_notice_batches c WHERE c.breach_id = $1 AND c.first_seq = b.first_seq AND c.status <> 'released')
			ORDER BY first_seq LIMIT 1`, breachID).Scan(&lo, &hi)
		var rows pgx.Rows
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			rows, err = tx.Query(ctx, `
				SELECT seq, email, phone, name FROM breach_recipients
				WHERE breach_id = $1 AND channel = 'email' AND seq > (SELECT coalesce(max(last_seq), 0) FROM breach_notice_batches WHERE breach_id = $1)
				ORDER BY seq LIMIT $2`, breachID, size)
		case err != nil:
			return err
		default:
			rows, err = tx.Query(ctx, `SELECT seq, email, phone, name FROM breach_recipients WHERE breach_id = $1 AND channel = 'email' AND seq BETWEEN $2 AND $3 ORDER BY seq`,
				breachID, lo, hi)
		}
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, scanRecipient); err != nil || len(out) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO breach_notice_batches (breach_id, run, batch, recipients, status, claimed_at, first_seq, last_seq)
			VALUES ($1, $2, $3, $4, 'claimed', $5, $6, $7)`,
			breachID, run, batch, len(out), at, out[0].Seq, out[len(out)-1].Seq)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	return out, nil
}

// BatchRecipients returns the people of a claimed batch, in order.
func (n Notices) BatchRecipients(ctx context.Context, breachID string, run, batch int) ([]Recipient, error) {
	rows, err := n.pool.Query(ctx, `
		SELECT r.seq, r.email, r.phone, r.name FROM breach_notice_batches b
		JOIN breach_recipients r ON r.breach_id = b.breach_id AND r.seq BETWEEN b.first_seq AND b.last_seq AND r.channel = 'email'
		WHERE b.breach_id = $1 AND b.run = $2 AND b.batch = $3 ORDER BY r.seq`, breachID, run, batch)
	if err != nil {
		return nil, fmt.Errorf("reading batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	out, err := pgx.CollectRows(rows, scanRecipient)
	if err != nil {
		return nil, fmt.Errorf("reading batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	return out, nil
}

// Settle records a batch's outcome, which is its people's: sent (with Mailgun's message id) or
// failed; refused, which leaves its people in the batch for the next attempt; or released
// (nothing was sent), which gives them to the next claim, with the reason. A batch already
// sent, failed or released stays as it is.
func (n Notices) Settle(ctx context.Context, breachID string, run, batch int, status, messageID, reason string, at time.Time) error {
	_, err := n.pool.Exec(ctx, `
		UPDATE breach_notice_batches SET status = $4, message_id = $5, error = $6, done_at = $7
		WHERE breach_id = $1 AND run = $2 AND batch = $3 AND status IN ('claimed', 'refused')`, breachID, run, batch, status, messageID, reason, at)
	if err != nil {
		return fmt.Errorf("recording the outcome of batch %d of the notice of breach %s: %w", batch, breachID, err)
	}
	return nil
}

// Delivered records a delivery event from Mailgun for recipient seq of a breach's notice:
// delivered or failed (for good), which makes their notice final, so their address is forgotten
// in the same write. A later event replaces an earlier one; an unknown recipient, or one whose
// batch is not recorded as sent, is ignored.
func (Notices) Delivered(ctx context.Context, db Querier, breachID string, seq int64, event string, at time.Time) error {
	_, err := db.Exec(ctx, `
		UPDATE breach_recipients SET delivery = $3, delivery_at = $4, `+forget+`
		WHERE breach_id = $1 AND seq = $2 AND channel = 'email' AND (delivery_at IS NULL OR delivery_at <= $4)
			AND EXISTS (SELECT 1 FROM breach_notice_batches b WHERE b.breach_id = $1 AND b.status = 'sent' AND $2 BETWEEN b.first_seq AND b.last_seq)`,
		breachID, seq, event, at)
	if err != nil {
		return fmt.Errorf("recording a delivery of the notice of breach %s: %w", breachID, err)
	}
	return nil
}

// forget is the SQL clearing a recipient's personal data, keeping their number, address_key,
// source and delivery status.
const forget = `email = NULL, phone = '', name = '', forgotten_at = coalesce(forgotten_at, now())`

// Forget clears the addresses of the people of run's batches and texts whose notice is final
// (sent or failed), once they are no longer needed, and returns how many it cleared. People
// still to be told keep theirs.
func (n Notices) Forget(ctx context.Context, breachID string, run int) (int64, error) {
	var cleared int64
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		for _, q := range []string{`
			UPDATE breach_recipients r SET ` + forget + `
			FROM breach_notice_batches b
			WHERE b.breach_id = $1 AND b.run = $2 AND b.status IN ('sent', 'failed')
				AND r.breach_id = $1 AND r.seq BETWEEN b.first_seq AND b.last_seq AND r.channel = 'email' AND r.forgotten_at IS NULL`, `
			UPDATE breach_recipients r SET ` + forget + `
			FROM breach_notice_texts t
			WHERE t.breach_id = $1 AND t.run = $2 AND t.status IN ('sent', 'failed')
				AND r.breach_id = $1 AND r.seq = t.seq AND r.forgotten_at IS NULL`} {
			tag, err := tx.Exec(ctx, q, breachID, run)
			if err != nil {
				return err
			}
			cleared += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("forgetting the addresses of notice run %d of breach %s: %w", run, breachID, err)
	}
	return cleared, nil
}

// ForgetPerson clears, in every breach notice of the tenant, the address of the person with
// these identifiers whose notice is final (sent or failed), and returns how many it cleared: the
// last step of their erasure. A notice still to be sent keeps the address, since telling them of
// a high-risk breach is a legal obligation (GDPR Art. 17(3)(b), Art. 34); it is cleared once
// final, as every notice's addresses are.
func (Notices) ForgetPerson(ctx context.Context, db Querier, tenant string, who Identifiers) (int64, error) {
	if who.Email == "" && who.Phone == "" {
		return 0, nil
	}
	tag, err := db.Exec(ctx, `
		UPDATE breach_recipients r SET `+forget+`
		FROM breaches br
		WHERE br.tenant_id = $1 AND r.breach_id = br.id AND r.forgotten_at IS NULL
			AND (($2 <> '' AND lower(r.email) = lower($2)) OR ($3 <> '' AND r.phone = $3))
			AND (EXISTS (SELECT 1 FROM breach_notice_batches b WHERE r.channel = 'email' AND b.breach_id = r.breach_id
					AND b.status IN ('sent', 'failed') AND r.seq BETWEEN b.first_seq AND b.last_seq)
				OR EXISTS (SELECT 1 FROM breach_notice_texts t WHERE t.breach_id = r.breach_id AND t.seq = r.seq AND t.status IN ('sent', 'failed')))`,
		tenant, who.Email, who.Phone)
	if err != nil {
		return 0, fmt.Errorf("forgetting a subject's breach notice addresses in tenant %s: %w", tenant, err)
	}
	return tag.RowsAffected(), nil
}

// Progress counts a breach's recipients by what became of their notice.
func (n Notices) Progress(ctx context.Context, breachID string) (NoticeProgress, error) {
	var p NoticeProgress
	var sending int64
	err := n.pool.QueryRow(ctx, `
		SELECT r.n, r.delivered, r.bounced, b.sending, b.sent, b.failed, b.batches, r.forgotten, r.texts, t.sending, t.sent, t.failed
		FROM (SELECT count(*) n, count(*) FILTER (WHERE delivery = 'delivered') delivered, count(*) FILTER (WHERE delivery = 'failed') bounced,
				count(*) FILTER (WHERE forgotten_at IS NOT NULL) forgotten, count(*) FILTER (WHERE channel = 'sms') texts
			FROM breach_recipients WHERE breach_id = $1) r,
			(SELECT coalesce(sum(recipients) FILTER (WHERE status IN ('claimed', 'refused')), 0) sending,
				coalesce(sum(recipients) FILTER (WHERE status = 'sent'), 0) sent,
				coalesce(sum(recipients) FILTER (WHERE status = 'failed'), 0) failed, count(*) batches
			FROM breach_notice_batches WHERE breach_id = $1) b,
			(SELECT count(*) FILTER (WHERE status IN ('claimed', 'refused')) sending, count(*) FILTER (WHERE status = 'sent') sent,
				count(*) FILTER (WHERE status = 'failed') failed
			FROM breach_notice_texts WHERE breach_id = $1) t`, breachID).
		Scan(&p.Recipients, &p.Delivered, &p.Bounced, &p.Sending, &p.Sent, &p.Failed, &p.Batches, &p.Forgotten, &p.Texts, &sending, &p.Texted, &p.TextFailed)
	if err != nil {
		return p, fmt.Errorf("counting the notice of breach %s: %w", breachID, err)
	}
	p.Sending += sending
	p.Sent += p.Texted
	p.Failed += p.TextFailed
	p.Pending = p.Recipients - p.Sending - p.Sent - p.Failed
	return p, nil
}

func scanRecipient(r pgx.CollectableRow) (x Recipient, err error) {
	var email *string // nil once forgotten
	err = r.Scan(&x.Seq, &email, &x.Phone, &x.Name)
	if email != nil {
		x.Email = *email
	}
	return x, err
}
