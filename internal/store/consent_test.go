package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func change(id int64, purpose string, granted bool, at time.Duration) store.ConsentChange {
	return store.ConsentChange{ID: id, Purpose: purpose, Granted: granted, Source: "test", ChangedAt: t0.Add(at)}
}

// The latest change by when it was made decides, whatever the order it was recorded in.
func TestConsentOfTakesTheLatestChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		history []store.ConsentChange
		purpose string
		granted bool
		decided string
	}{
		{"nothing recorded is not granted", nil, "marketing_email", false, ""},
		{"granted", []store.ConsentChange{change(1, "marketing_email", true, 0)}, "marketing_email", true, "marketing_email"},
		{"withdrawn, then granted again", []store.ConsentChange{change(1, "marketing_email", false, 0), change(2, "marketing_email", true, time.Hour)}, "marketing_email", true, "marketing_email"},
		{"granted, then withdrawn", []store.ConsentChange{change(1, "marketing_email", true, 0), change(2, "marketing_email", false, time.Hour)}, "marketing_email", false, "marketing_email"},
		// A grant made before the withdrawal but recorded after it (a slow producer) changes nothing.
		{"an older grant recorded late", []store.ConsentChange{change(1, "marketing_email", false, time.Hour), change(2, "marketing_email", true, 0)}, "marketing_email", false, "marketing_email"},
		{"equal times: the one recorded last", []store.ConsentChange{change(2, "marketing_email", true, 0), change(1, "marketing_email", false, 0)}, "marketing_email", true, "marketing_email"},
		{"a broader withdrawal decides", []store.ConsentChange{change(1, "marketing_email", true, 0), change(2, "marketing", false, time.Hour)}, "marketing_email", false, "marketing"},
		{"a narrower grant after it decides its own purpose", []store.ConsentChange{change(1, "marketing", false, 0), change(2, "marketing_email", true, time.Hour)}, "marketing_email", true, "marketing_email"},
		{"a narrower grant leaves the broad purpose", []store.ConsentChange{change(1, "marketing", false, 0), change(2, "marketing_email", true, time.Hour)}, "marketing", false, "marketing"},
		{"another purpose does not count", []store.ConsentChange{change(1, "marketing_sms", true, 0)}, "marketing_email", false, ""},
		{"a prefix that is not a parent", []store.ConsentChange{change(1, "market", true, 0)}, "marketing", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.ConsentOf(tc.history, tc.purpose)
			assert.Equal(t, tc.granted, st.Granted)
			assert.Equal(t, tc.decided, st.DecidedBy)
			assert.Equal(t, tc.purpose, st.Purpose)
		})
	}
}

func TestCurrentConsentListsEveryPurpose(t *testing.T) {
	h := []store.ConsentChange{change(1, "marketing_sms", true, 0), change(2, "marketing_email", true, time.Minute), change(3, "marketing", false, time.Hour)}
	var got []string
	for _, s := range store.CurrentConsent(h) {
		got = append(got, s.Purpose+"="+map[bool]string{true: "granted", false: "withdrawn"}[s.Granted])
	}
	assert.Equal(t, []string{"marketing=withdrawn", "marketing_email=withdrawn", "marketing_sms=withdrawn"}, got)
	assert.Empty(t, store.CurrentConsent(nil))
}

func migrated(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, testenv.PostgresURL(t), 4)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	return s
}

// The ledger is read back in the order changes were made, refuses edits, and queues every row
// for its event; Publish hands each over once and keeps what failed.
func TestConsentLedgerReadBackAndPublish(t *testing.T) {
	ctx := context.Background()
	s := migrated(t)
	c := s.Consent()
	ref := strings.Repeat("ab", 32)
	rec := func(key, purpose string, granted bool, at time.Duration) {
		require.NoError(t, c.Record(ctx, store.ConsentChange{Key: key, TenantID: "salon", SubjectHash: ref, Purpose: purpose, Granted: granted, Source: "test", ChangedAt: t0.Add(at)}))
	}
	rec("k1", "marketing_email", false, time.Hour) // recorded first, made later
	rec("k2", "marketing_email", true, 0)
	rec("k2", "marketing_email", true, 0) // a redelivery records nothing
	rec("k3", "marketing_email", true, 2*time.Hour)
	require.NoError(t, c.Record(ctx, store.ConsentChange{Key: "other", TenantID: "spa", SubjectHash: ref, Purpose: "marketing_email", Granted: true, Source: "test", ChangedAt: t0}))

	h, err := c.History(ctx, "salon", ref)
	require.NoError(t, err)
	require.Len(t, h, 3, "the other tenant's change is not this subject's")
	assert.Equal(t, []string{"k2", "k1", "k3"}, []string{h[0].Key, h[1].Key, h[2].Key})
	st, err := c.State(ctx, "salon", ref, "marketing_email")
	require.NoError(t, err)
	assert.True(t, st.Granted)

	_, err = s.Pool.Exec(ctx, `UPDATE consent_ledger SET granted = NOT granted`)
	assert.ErrorContains(t, err, "consent_ledger is append-only")
	_, err = s.Pool.Exec(ctx, `DELETE FROM consent_ledger`)
	assert.ErrorContains(t, err, "consent_ledger is append-only")

	type seen struct {
		key     string
		granted bool
	}
	var got []seen
	boom := errors.New("broker down")
	n, err := c.Publish(ctx, 10, func(_ context.Context, ch store.ConsentChange, st store.ConsentState) error {
		if ch.Key == "k3" {
			return boom
		}
		got = append(got, seen{ch.Key, st.Granted})
		return nil
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 2, n)
	// Each event carries the state its purpose has with everything recorded: k1's withdrawal is
	// already overtaken by k3.
	assert.Equal(t, []seen{{"k1", true}, {"k2", true}}, got)

	got = nil
	n, err = c.Publish(ctx, 10, func(_ context.Context, ch store.ConsentChange, st store.ConsentState) error {
		got = append(got, seen{ch.Key, st.Granted})
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the failed change and the one after it")
	assert.Equal(t, []seen{{"k3", true}, {"other", true}}, got)
	_, err = c.Publish(ctx, 10, func(context.Context, store.ConsentChange, store.ConsentState) error { return nil })
	assert.ErrorIs(t, err, store.ErrNothingQueued)
}
