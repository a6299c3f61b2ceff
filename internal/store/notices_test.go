package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/jackc/pgx/v5"
	"github.com/lethe-privacy/lethe/internal/crypto"
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
	openBreach(t, s, "b")
	var rs []store.Recipient
	for i := range 30 {
		rs = append(rs, store.Recipient{Email: fmt.Sprintf("Person%02d@example.com", i), Phone: "+4917000000", Name: "P"})
	}
	added, err := n.AddRecipients(ctx, "", "b", "csv", rs)
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
	added, err = n.AddRecipients(ctx, "", "b", "csv", rs)
	require.NoError(t, err)
	assert.Zero(t, added)
	rest, err := n.Claim(ctx, "b", 1, 3, 100, time.Now())
	require.NoError(t, err)
	require.Len(t, rest, 10)
	assert.Equal(t, "Person20@example.com", rest[0].Email)
}

// People known only by a phone are recipients of their own: the same number twice is one
// person, email batches never take them, and each text is claimed and settled on its own. A
// released text goes first to the next claim; Progress counts texts within sent and failed;
// Forget and ForgetPerson clear a phone once its text is final, as they do an email.
func TestNoticeTextsAreClaimedOneByOne(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	n := s.Notices()
	openBreach(t, s, "bt")
	rs := []store.Recipient{{Email: "a@example.com", Phone: "+447700900001"}, {Phone: "+447700900002"}, {Email: "b@example.com"},
		{Phone: "+447700900003"}, {Phone: "+447700900002"}, {Phone: "+447700900004"}, {Phone: "+447700900005"}}
	added, err := n.AddRecipients(ctx, "", "bt", "csv", rs)
	require.NoError(t, err)
	require.EqualValues(t, 6, added, "the same phone twice is one person")
	again, err := n.AddRecipients(ctx, "", "bt", "csv", []store.Recipient{{Phone: "+447700900003"}, {Phone: "+447700900001"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, again, "a listed phone-only person is not listed again; the email person's phone is no key")

	emails, err := n.Claim(ctx, "bt", 1, 1, 100, time.Now())
	require.NoError(t, err)
	require.Len(t, emails, 2, "email batches take email people only")
	require.NoError(t, n.Settle(ctx, "bt", 1, 1, store.BatchSent, "m1", "", time.Now()))
	got, err := n.BatchRecipients(ctx, "bt", 1, 1)
	require.NoError(t, err)
	assert.Len(t, got, 2, "a batch's range holds no phone-only person")

	first, err := n.ClaimTexts(ctx, "bt", 1, 1, 2, time.Now())
	require.NoError(t, err)
	require.Len(t, first, 2)
	assert.Equal(t, "+447700900002", first[0].Phone)
	assert.Equal(t, store.BatchClaimed, first[0].Status)
	second, err := n.ClaimTexts(ctx, "bt", 1, 2, 10, time.Now())
	require.NoError(t, err)
	require.Len(t, second, 3, "the rest, including the one added later")
	again2, err := n.Texts(ctx, "bt", 1, 1)
	require.NoError(t, err)
	assert.Equal(t, first, again2, "a retry finds its claim")

	require.NoError(t, n.SettleText(ctx, "bt", first[0].Seq, store.BatchSent, "SM1", "", time.Now()))
	require.NoError(t, n.SettleText(ctx, "bt", first[1].Seq, store.BatchFailed, "", "twilio answered 400 (code 21610)", time.Now()))
	require.NoError(t, n.SettleText(ctx, "bt", first[1].Seq, store.BatchSent, "SM2", "", time.Now()), "settled stays settled")
	require.NoError(t, n.SettleText(ctx, "bt", second[0].Seq, store.BatchRefused, "", "twilio answered 429 (code 20429)", time.Now()))
	open, err := n.UnsettledTexts(ctx, "bt", 1, 1)
	require.NoError(t, err)
	require.Len(t, open, 3)
	for _, x := range open {
		require.NoError(t, n.SettleText(ctx, "bt", x.Seq, store.BatchReleased, "", "not sent: stopped", time.Now()))
	}
	p, err := n.Progress(ctx, "bt")
	require.NoError(t, err)
	assert.Equal(t, store.NoticeProgress{Recipients: 7, Pending: 3, Sent: 3, Failed: 1, Batches: 1, Texts: 5, Texted: 1, TextFailed: 1}, p)

	none, err := n.ClaimTexts(ctx, "bt", 1, 3, 0, time.Now())
	require.NoError(t, err)
	assert.Empty(t, none)
	retold, err := n.ClaimTexts(ctx, "bt", 2, 1, 10, time.Now())
	require.NoError(t, err)
	require.Len(t, retold, 3, "released texts go to the next claim")
	assert.Equal(t, second[0].Seq, retold[0].Seq)
	more, err := n.ClaimTexts(ctx, "bt", 2, 2, 10, time.Now())
	require.NoError(t, err)
	assert.Empty(t, more, "nobody is claimed twice")

	body, err := n.TextBody(ctx, "bt", 1, "first")
	require.NoError(t, err)
	assert.Equal(t, "first", body)
	body, err = n.TextBody(ctx, "bt", 1, "changed")
	require.NoError(t, err)
	assert.Equal(t, "first", body, "a run's texts keep the body they started with")

	phone := func(seq int64) string {
		var p string
		require.NoError(t, s.Pool.QueryRow(ctx, `SELECT phone FROM breach_recipients WHERE breach_id = 'bt' AND seq = $1`, seq).Scan(&p))
		return p
	}
	cleared, err := n.Forget(ctx, "bt", 1)
	require.NoError(t, err)
	assert.EqualValues(t, 4, cleared, "the two emails and the two final texts")
	assert.Empty(t, phone(first[0].Seq))
	assert.NotEmpty(t, phone(retold[0].Seq), "still to be told")
	require.NoError(t, n.SettleText(ctx, "bt", retold[0].Seq, store.BatchSent, "SM3", "", time.Now()))
	cleared, err = n.ForgetPerson(ctx, s.Pool, "salon", store.Identifiers{Phone: retold[0].Phone})
	require.NoError(t, err)
	assert.EqualValues(t, 1, cleared, "an erased person's phone goes once their text is final")
	assert.Empty(t, phone(retold[0].Seq))
	cleared, err = n.ForgetPerson(ctx, s.Pool, "salon", store.Identifiers{Phone: retold[1].Phone})
	require.NoError(t, err)
	assert.Zero(t, cleared, "a text still to be sent keeps its phone (Art. 17(3)(b))")
}

// Twilio's status callback makes a text's delivery final and forgets the phone: for a text
// still claimed (the sender's answer not recorded yet) it records the text sent, since the
// callback proves it was; one naming another SID, or a text not sent, is ignored.
func TestTextDeliveryIsRecordedFromTheCallback(t *testing.T) {
	ctx := context.Background()
	salon := []string{"salon"} // the tenants of the instance the callback came through
	s := testenv.Store(t)
	n := s.Notices()
	openBreach(t, s, "bd")
	_, err := n.AddRecipients(ctx, "", "bd", "csv", []store.Recipient{{Phone: "+447700900001"}, {Phone: "+447700900002"}, {Phone: "+447700900003"}})
	require.NoError(t, err)
	ts, err := n.ClaimTexts(ctx, "bd", 1, 1, 2, time.Now())
	require.NoError(t, err)
	require.Len(t, ts, 2)
	require.NoError(t, n.SettleText(ctx, "bd", 2, store.BatchSent, "SM2", "", time.Now()))

	require.NoError(t, n.TextDelivered(ctx, s.Pool, salon, "bd", 1, "SM1", "delivered", time.Now()), "before its answer was recorded")
	require.NoError(t, n.TextDelivered(ctx, s.Pool, salon, "bd", 2, "SM-other", "delivered", time.Now()), "another SID")
	require.NoError(t, n.TextDelivered(ctx, s.Pool, salon, "bd", 3, "SM3", "failed", time.Now()), "never claimed")
	require.NoError(t, n.TextDelivered(ctx, s.Pool, []string{"studio"}, "bd", 2, "SM2", "failed", time.Now()), "through another tenant's instance")
	require.NoError(t, n.SettleText(ctx, "bd", 1, store.BatchSent, "SM1", "", time.Now()), "the late answer")
	p, err := n.Progress(ctx, "bd")
	require.NoError(t, err)
	assert.Equal(t, store.NoticeProgress{Recipients: 3, Pending: 1, Sent: 2, Delivered: 1, Forgotten: 1, Texts: 3, Texted: 2}, p)
	require.NoError(t, n.TextDelivered(ctx, s.Pool, salon, "bd", 2, "SM2", "failed", time.Now()))
	p, err = n.Progress(ctx, "bd")
	require.NoError(t, err)
	assert.EqualValues(t, 1, p.Bounced)
	assert.EqualValues(t, 2, p.Forgotten)
}

func openBreach(t *testing.T, s *store.Store, id string) {
	t.Helper()
	_, err := s.Breaches().Open(context.Background(), s.Pool, store.BreachRow{ID: id, TenantID: "salon", Title: "Stolen laptop", Status: "open",
		AwareAt: time.Now(), OpenedBy: "dpo", OpenedAt: time.Now()})
	require.NoError(t, err)
}

// A recipient's address_key is keyed with the deployment's key, so the register cannot be
// tested with a guessed address; people listed before, under the unkeyed SHA-256, are still
// known and not listed (and told) again.
func TestRecipientKeysAreKeyedAndKnowEarlierOnes(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	n := s.Notices()
	openBreach(t, s, "bk")
	const key = "deployment-signing-key-0123456789"
	added, err := n.AddRecipients(ctx, key, "bk", "csv", []store.Recipient{{Email: "Ada@Example.com"}, {Phone: "+447700900009"}})
	require.NoError(t, err)
	assert.EqualValues(t, 2, added)
	var keys [][]byte
	rows, err := s.Pool.Query(ctx, `SELECT address_key FROM breach_recipients WHERE breach_id = 'bk' ORDER BY seq`)
	require.NoError(t, err)
	keys, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
	require.NoError(t, err)
	plain := sha256.Sum256([]byte("bk:ada@example.com"))
	assert.NotEqual(t, plain[:], keys[0], "not the unkeyed hash")
	assert.Equal(t, crypto.RecipientKey(key, "bk", "ada@example.com", ""), keys[0])
	assert.Equal(t, crypto.RecipientKey(key, "bk", "", "+447700900009"), keys[1])

	// Bea was listed before keys, and her address has since been forgotten.
	legacy := sha256.Sum256([]byte("bk:bea@example.com"))
	_, err = s.Pool.Exec(ctx, `INSERT INTO breach_recipients (breach_id, seq, email, source, address_key, forgotten_at) VALUES ('bk', 3, NULL, 'csv', $1, now())`, legacy[:])
	require.NoError(t, err)
	added, err = n.AddRecipients(ctx, key, "bk", "csv", []store.Recipient{{Email: "BEA@example.com"}, {Email: "ada@EXAMPLE.com"}, {Email: "cy@example.com"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, added, "only Cy is new")
}
