package store

import (
	"context"
	"fmt"
	"time"
)

// Rate limits (table rate_limits) use GCRA: each key keeps a theoretical arrival time (tat).
// With n events allowed per period, every event moves tat on by period/n, and an event is
// allowed while tat stays within one period of now. One upsert decides and records, under the
// row's lock, so concurrent takes from any number of processes never both get the last unit.

// Take spends one unit of key's budget of n per period. It reports whether the event is
// allowed and, when not, how long until it would be. With force the unit is spent even over
// the budget (counted, never refused), without pushing the key further than one full period.
func (s *Store) Take(ctx context.Context, key string, n int, per time.Duration, now time.Time, force bool) (bool, time.Duration, error) {
	step := per / time.Duration(n)
	var tat time.Time
	var allowed bool
	err := s.Pool.QueryRow(ctx, `
		INSERT INTO rate_limits AS r (key, tat, allowed) VALUES ($1, $2::timestamptz + $3 * interval '1 microsecond', true)
		ON CONFLICT (key) DO UPDATE SET
			allowed = GREATEST(r.tat, $2) + $3 * interval '1 microsecond' <= $2::timestamptz + $4 * interval '1 microsecond',
			tat = CASE
				WHEN GREATEST(r.tat, $2) + $3 * interval '1 microsecond' <= $2::timestamptz + $4 * interval '1 microsecond'
					THEN GREATEST(r.tat, $2) + $3 * interval '1 microsecond'
				WHEN $5 THEN $2::timestamptz + $4 * interval '1 microsecond'
				ELSE r.tat END
		RETURNING tat, allowed`, key, now, step.Microseconds(), per.Microseconds(), force).Scan(&tat, &allowed)
	if err != nil {
		return false, 0, fmt.Errorf("counting rate limit %s: %w", key, err)
	}
	if allowed || force {
		return true, 0, nil
	}
	return false, tat.Add(step - per).Sub(now), nil
}

// Refund gives back one unit taken from key's budget of n per period, when a later limit of
// the same event refused it.
func (s *Store) Refund(ctx context.Context, key string, n int, per time.Duration) error {
	step := per / time.Duration(n)
	if _, err := s.Pool.Exec(ctx, `UPDATE rate_limits SET tat = tat - $2 * interval '1 microsecond' WHERE key = $1`,
		key, step.Microseconds()); err != nil {
		return fmt.Errorf("refunding rate limit %s: %w", key, err)
	}
	return nil
}

// ExpireRates deletes the keys whose budget is full again, which are the same as no row.
func (s *Store) ExpireRates(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM rate_limits WHERE tat < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("expiring rate limits: %w", err)
	}
	return tag.RowsAffected(), nil
}
