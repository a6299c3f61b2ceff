package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// A notice's addresses are personal data kept only while needed: a person's goes as soon as
// Mailgun reports their delivery final, the rest of a run's people's when Forget runs (after
// mail.notice_retention), and people still to be told keep theirs. What stays counts everyone
// and still keeps a person from being listed, and told, twice.
func TestNoticeAddressesAreForgottenOnceFinal(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	n := s.Notices()
	_, err := s.Breaches().Open(ctx, s.Pool, store.BreachRow{ID: "b", TenantID: "salon", Title: "Stolen laptop", Status: "open",
		AwareAt: time.Now(), OpenedBy: "dpo", OpenedAt: time.Now()})
	require.NoError(t, err)
	var rs []store.Recipient
	for i := range 30 {
		rs = append(rs, store.Recipient{Email: fmt.Sprintf("Person%02d@example.com", i), Phone: "+4917000000", Name: "P"})
	}
	added, err := n.AddRecipients(ctx, "b", "csv", rs)
	require.NoError(t, err)
	require.EqualValues(t, 30, added)

	// Batch 1 (people 1-10) sent, batch 2 (11-20) failed for good, 21-30 not claimed yet.
	for b, status := range []string{store.BatchSent, store.BatchFailed} {
		got, err := n.Claim(ctx, "b", 1, b+1, 10, time.Now())
		require.NoError(t, err)
		require.Len(t, got, 10)
		require.NoError(t, n.Settle(ctx, "b", 1, b+1, status, "", "", time.Now()))
	}
	require.NoError(t, n.Delivered(ctx, s.Pool, "b", 3, "delivered", time.Now()))
	require.NoError(t, n.Delivered(ctx, s.Pool, "b", 25, "delivered", time.Now())) // not sent: ignored
	addresses := func() map[int64]string {
		rows, err := s.Pool.Query(ctx, `SELECT seq, coalesce(email, '') || phone || name FROM breach_recipients WHERE breach_id = 'b'`)
		require.NoError(t, err)
		out := map[int64]string{}
		for rows.Next() {
			var seq int64
			var v string
			require.NoError(t, rows.Scan(&seq, &v))
			out[seq] = v
		}
		require.NoError(t, rows.Err())
		return out
	}
	a := addresses()
	assert.Empty(t, a[3], "a person Mailgun reported delivered keeps no address")
	assert.NotEmpty(t, a[4], "nor is anyone else's address cleared yet")
	assert.NotEmpty(t, a[25])

	cleared, err := n.Forget(ctx, "b", 1)
	require.NoError(t, err)
	assert.EqualValues(t, 19, cleared, "the rest of batches 1 and 2")
	a = addresses()
	for seq := int64(1); seq <= 30; seq++ {
		if seq <= 20 {
			assert.Empty(t, a[seq], "person %d's notice is final", seq)
		} else {
			assert.NotEmpty(t, a[seq], "person %d is still to be told", seq)
		}
	}
	p, err := n.Progress(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, store.NoticeProgress{Recipients: 30, Pending: 10, Sent: 10, Failed: 10, Delivered: 1, Batches: 2, Forgotten: 20}, p)

	// The same people uploaded again, in another case: nobody is listed twice.
	for i := range rs {
		rs[i].Email = fmt.Sprintf("person%02d@EXAMPLE.com", i)
	}
	added, err = n.AddRecipients(ctx, "b", "csv", rs)
	require.NoError(t, err)
	assert.Zero(t, added)
	rest, err := n.Claim(ctx, "b", 1, 3, 100, time.Now())
	require.NoError(t, err)
	require.Len(t, rest, 10)
	assert.Equal(t, "Person20@example.com", rest[0].Email)
}
