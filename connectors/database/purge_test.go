package database_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
)

const day = 24 * time.Hour

// purgeAll runs the rule in bounded commands until it reports nothing more, as Lethe's
// retention workflow does, and adds up what they did.
func purgeAll(t *testing.T, e *env, key, rule string, period time.Duration) (rows, blocked int64) {
	t.Helper()
	after := ""
	for i := 0; ; i++ {
		params := map[string]any{"rule": rule, "older_than": period.Seconds(), "max_batches": float64(1)}
		if after != "" {
			params["after"] = after
		}
		res, err := e.conn.Purge(context.Background(), connectors.Task{Key: fmt.Sprintf("%s-%d", key, i), Params: params})
		require.NoError(t, err)
		rows, blocked, after = rows+res.Rows[rule], blocked+res.Blocked[rule], res.Cursor
		if !res.More {
			return rows, blocked
		}
	}
}

func dryRun(t *testing.T, e *env, rule string, period time.Duration) connectors.PurgeResult {
	t.Helper()
	res, err := e.conn.Purge(context.Background(), connectors.Task{Key: "dry-" + rule,
		Params: map[string]any{"rule": rule, "older_than": period.Seconds(), "dry_run": true}})
	require.NoError(t, err)
	require.True(t, res.DryRun)
	return res
}

func TestRetentionDryRunAndRunAgreeAndRunOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, configWith(t, "batch_size: 200", "batch_size: 3"))
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := e.admin.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	// Three customers whose last booking is four years old; one of them still owes money.
	var inactive []connectors.Subject
	var firstID int64
	for i := 0; i < 3; i++ {
		s, id := e.seed(t, false, i == 2)
		if i == 0 {
			firstID = id
		}
		exec(`UPDATE customers SET created_at = now() - interval '6 years' WHERE id = $1`, id)
		exec(`UPDATE bookings SET starts_at = now() - interval '4 years' WHERE customer_id = $1`, id)
		inactive = append(inactive, s)
	}
	// An old customer who booked last month is active.
	active, activeID := e.seed(t, false, false)
	exec(`UPDATE customers SET created_at = now() - interval '6 years' WHERE id = $1`, activeID)

	years3, days60 := 3*365*day, 60*day
	// One dry run of both rules counts what the runs then do, though they overlap: the
	// customers erased first lose their booking notes, which the booking rule no longer counts.
	dry, err := e.conn.Purge(ctx, connectors.Task{Key: "dry-both", Params: map[string]any{"dry_run": true,
		"rules": []any{map[string]any{"rule": "inactive_customers", "older_than": years3.Seconds()},
			map[string]any{"rule": "past_bookings", "older_than": days60.Seconds()}}}})
	require.NoError(t, err)
	require.True(t, dry.DryRun)
	require.GreaterOrEqual(t, dry.Rows["inactive_customers"], int64(2))
	require.GreaterOrEqual(t, dry.Blocked["inactive_customers"], int64(1))
	require.NotContains(t, dry.Rows, "cancelled_bookings", "only the rules named run")
	assert.True(t, e.hasPersonalData(t, inactive[0]), "a dry run changes nothing")
	alone := dryRun(t, e, "past_bookings", days60)
	assert.Greater(t, alone.Rows["past_bookings"], dry.Rows["past_bookings"], "alone, the booking rule would count the erased customers' bookings too")

	rows, blocked := purgeAll(t, e, "run1-customers", "inactive_customers", years3)
	assert.Equal(t, dry.Rows["inactive_customers"], rows, "the dry run counted what the run erased")
	assert.Equal(t, dry.Blocked["inactive_customers"], blocked)
	assert.False(t, e.hasPersonalData(t, inactive[0]))
	assert.False(t, e.hasPersonalData(t, inactive[1]))
	assert.True(t, e.hasPersonalData(t, inactive[2]), "an outstanding balance blocks the purge as it blocks an erasure")
	assert.True(t, e.hasPersonalData(t, active))
	var invoices int64
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM invoices WHERE customer_id = $1 AND amount_cents = 4500`, firstID).Scan(&invoices))
	assert.EqualValues(t, 1, invoices, "financial records are kept")

	again, _ := purgeAll(t, e, "run2-customers", "inactive_customers", years3)
	assert.Zero(t, again, "a second run purges nothing more")
	assert.Zero(t, dryRun(t, e, "inactive_customers", years3).Rows["inactive_customers"])

	// Bookings are anonymised once the event is 60 days past; last month's keep their notes.
	require.Positive(t, dry.Rows["past_bookings"])
	rowsB, _ := purgeAll(t, e, "run1-bookings", "past_bookings", days60)
	assert.Equal(t, dry.Rows["past_bookings"], rowsB)
	var left, recent int64
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE starts_at < now() - interval '61 days' AND notes IS NOT NULL),
		count(*) FILTER (WHERE starts_at > now() - interval '59 days' AND notes IS NOT NULL) FROM bookings`).Scan(&left, &recent))
	assert.Zero(t, left)
	assert.Positive(t, recent, "bookings inside the period keep their notes")
	againB, _ := purgeAll(t, e, "run2-bookings", "past_bookings", days60)
	assert.Zero(t, againB)
}

func TestPurgeOfOneSubject(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	s, _ := e.seed(t, false, false)
	other, _ := e.seed(t, false, false)

	dry, err := e.conn.Purge(ctx, connectors.Task{Key: "x-dry", Subject: s, Params: map[string]any{"dry_run": true}})
	require.NoError(t, err)
	assert.Equal(t, 1, dry.Subjects)
	assert.True(t, e.hasPersonalData(t, s))

	task := connectors.Task{Key: "expiry-1/database/purge", Subject: s}
	res, err := e.conn.Purge(ctx, task)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Subjects)
	assert.Positive(t, res.Rows["customers"])
	assert.False(t, e.hasPersonalData(t, s))
	assert.True(t, e.hasPersonalData(t, other))

	again, err := e.conn.Purge(ctx, task)
	require.NoError(t, err)
	assert.Equal(t, res.Rows, again.Rows, "the same task is answered from the ledger")

	_, err = e.conn.Purge(ctx, connectors.Task{Key: "x-2", Subject: other, Params: map[string]any{"rule": "past_bookings"}})
	assert.True(t, connectors.IsPermanent(err), "a subject's purge takes no rule")

	blockedSubj, _ := e.seed(t, true, false)
	_, err = e.conn.Purge(ctx, connectors.Task{Key: "x-3", Subject: blockedSubj})
	blocks, ok := connectors.BlocksOf(err)
	require.True(t, ok, "a booking still to come blocks: %v", err)
	assert.Equal(t, "active_booking", blocks[0].Code)
}
