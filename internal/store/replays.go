package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Assertions are the IDs of the host apps' identity assertions already accepted (table
// identity_assertions_seen), kept until the assertions expire so each is accepted once. The
// primary key decides between concurrent uses, across processes.
type Assertions struct{}

// Assertions returns the used assertions' repository.
func (s *Store) Assertions() Assertions { return Assertions{} }

// Prune forgets the assertions that expired before before.
func (Assertions) Prune(ctx context.Context, db Querier, before time.Time) error {
	if _, err := db.Exec(ctx, `DELETE FROM identity_assertions_seen WHERE expires_at < $1`, before); err != nil {
		return fmt.Errorf("pruning used identity assertions: %w", err)
	}
	return nil
}

// Remember records assertion jti of audience as used at now and reports whether it was new.
func (Assertions) Remember(ctx context.Context, db Querier, audience, jti string, expires, now time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `
		INSERT INTO identity_assertions_seen (audience, jti, expires_at, seen_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (audience, jti) DO NOTHING`, audience, jti, expires, now)
	if err != nil {
		return false, fmt.Errorf("recording a used identity assertion: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// WebhookTokens are the tokens of the mail provider's signed webhooks already received (table
// mail_webhook_tokens), so a captured webhook cannot be replayed.
type WebhookTokens struct{}

// WebhookTokens returns the webhook tokens' repository.
func (s *Store) WebhookTokens() WebhookTokens { return WebhookTokens{} }

// Remember records token as received at at and reports whether it was new.
func (WebhookTokens) Remember(ctx context.Context, db Querier, token string, at time.Time) (bool, error) {
	_, err := db.Exec(ctx, `INSERT INTO mail_webhook_tokens (token, received_at) VALUES ($1, $2)`, token, at)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording a mail webhook token: %w", err)
	}
	return true, nil
}

// Prune forgets the tokens received before before.
func (WebhookTokens) Prune(ctx context.Context, db Querier, before time.Time) error {
	if _, err := db.Exec(ctx, `DELETE FROM mail_webhook_tokens WHERE received_at < $1`, before); err != nil {
		return fmt.Errorf("pruning mail webhook tokens: %w", err)
	}
	return nil
}
