package activities_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newActivities are activities over a migrated database of their own and an export directory.
func newActivities(t *testing.T) (*activities.Activities, *store.Store, *exportstore.Dir) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testenv.PostgresURL(t), 4)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	_, err = st.Migrate(ctx)
	require.NoError(t, err)
	dir, err := exportstore.NewDir(t.TempDir())
	require.NoError(t, err)
	return &activities.Activities{Store: st, Exports: dir, ExportBase: dir.URI("")}, st, dir
}

// writeExport writes one file of an export, as a connector or the packager would.
func writeExport(t *testing.T, dir *exportstore.Dir, uri, body string) {
	t.Helper()
	w, err := dir.Create(context.Background(), uri)
	require.NoError(t, err)
	_, err = io.WriteString(w, body)
	require.NoError(t, err)
	_, err = w.Commit()
	require.NoError(t, err)
}

// ForgetSubject finds the subject's other requests by the erasure's proven identifiers only:
// a customer number typed next to the erasure's email, never proven, forgets nobody else. A
// request of the subject still being worked on keeps its copy.
func TestForgetSubjectFindsRequestsByProvenIdentifiersOnly(t *testing.T) {
	ctx := context.Background()
	a, st, dir := newActivities(t)

	const proven = `{"email": {"method": "email_code", "actor": "subject", "at": "2026-03-01T12:00:00Z"}}`
	for _, r := range []struct{ id, tenant, status, email, customer, proofs string }{
		{"erasure", "salon", "in_progress", "ada@example.com", "C-BOB", proven}, // C-BOB typed, unproven
		{"old-access", "salon", "completed", "ADA@example.com", "", `{}`},
		{"unverified", "salon", "identity_pending", "ada@example.com", "", `{}`},
		{"working", "salon", "in_progress", "ada@example.com", "", proven},
		{"bobs", "salon", "completed", "bob@example.com", "C-BOB", proven},
		{"other-tenant", "spa", "completed", "ada@example.com", "", proven},
	} {
		_, err := st.Pool.Exec(ctx, `INSERT INTO requests (id, tenant_id, type, status, regime, received_at) VALUES ($1, $2, 'access', $3, 'gdpr', now())`, r.id, r.tenant, r.status)
		require.NoError(t, err)
		_, err = st.Pool.Exec(ctx, `INSERT INTO request_subjects (request_id, tenant_id, email, customer_id, proofs) VALUES ($1, $2, $3, NULLIF($4, ''), $5)`,
			r.id, r.tenant, r.email, r.customer, r.proofs)
		require.NoError(t, err)
		writeExport(t, dir, dir.URI(r.tenant+"/"+r.id+"/database/customers.jsonl"), `{"email":"`+r.email+`"}`)
	}
	_, err := st.Pool.Exec(ctx, `INSERT INTO verification_codes (request_id, code_hash, issued_at, expires_at, window_started_at) VALUES ('unverified', '\x00', now(), now(), now())`)
	require.NoError(t, err)

	require.NoError(t, a.ForgetSubject(ctx, "erasure"))
	require.NoError(t, a.ForgetSubject(ctx, "erasure"), "a retry finds nothing left to do")

	var left []string
	rows, err := st.Pool.Query(ctx, `SELECT request_id FROM request_subjects ORDER BY request_id`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		left = append(left, id)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"bobs", "other-tenant", "working"}, left)
	for id, want := range map[string]bool{"salon/erasure": false, "salon/old-access": false, "salon/unverified": false, "salon/working": true, "salon/bobs": true, "spa/other-tenant": true} {
		_, err := os.Stat(filepath.Join(dir.Root, id))
		assert.Equal(t, want, err == nil, "export files of %s kept", id)
	}
	var codes int
	require.NoError(t, st.Pool.QueryRow(ctx, `SELECT count(*) FROM verification_codes`).Scan(&codes))
	assert.Zero(t, codes)
	var detail map[string]any
	require.NoError(t, st.Pool.QueryRow(ctx, `SELECT detail FROM audit_events WHERE action = 'subject.forgotten'`).Scan(&detail))
	assert.Equal(t, map[string]any{"requests": 3.0, "verification_codes": 1.0, "export_packages": 0.0, "export_files": 3.0, "kept_for_open_requests": 1.0, "breach_notice_addresses": 0.0}, detail)
}

// An erasure also clears the subject's address from the tenant's breach notices already sent;
// one still to be sent keeps it (telling them is a legal obligation), as do other people and
// other tenants.
func TestForgetSubjectClearsSentBreachNoticeAddresses(t *testing.T) {
	ctx := context.Background()
	a, st, _ := newActivities(t)
	const proven = `{"email": {"method": "email_code", "actor": "subject", "at": "2026-03-01T12:00:00Z"}}`
	_, err := st.Pool.Exec(ctx, `INSERT INTO requests (id, tenant_id, type, status, regime, received_at) VALUES ('erasure', 'salon', 'erasure', 'in_progress', 'gdpr', now())`)
	require.NoError(t, err)
	_, err = st.Pool.Exec(ctx, `INSERT INTO request_subjects (request_id, tenant_id, email, proofs) VALUES ('erasure', 'salon', 'ada@example.com', $1)`, proven)
	require.NoError(t, err)
	now := time.Now().UTC()
	notices := st.Notices()
	for _, b := range []struct {
		id, tenant string
		sent       bool
	}{{"br-sent", "salon", true}, {"br-pending", "salon", false}, {"br-spa", "spa", true}} {
		_, err := st.Breaches().Open(ctx, st.Pool, store.BreachRow{ID: b.id, TenantID: b.tenant, Title: "Stolen laptop", Status: "open",
			AwareAt: now, OpenedBy: "dpo", OpenedAt: now, UpdatedAt: now})
		require.NoError(t, err)
		_, err = notices.AddRecipients(ctx, "", b.id, "csv", []store.Recipient{{Email: "Ada@Example.com", Name: "Ada"}, {Email: "bob@example.com"}})
		require.NoError(t, err)
		if b.sent {
			_, err = notices.Claim(ctx, b.id, 1, 1, 10, now)
			require.NoError(t, err)
			require.NoError(t, notices.Settle(ctx, b.id, 1, 1, store.BatchSent, "<m@mg>", "", now))
		}
	}

	require.NoError(t, a.ForgetSubject(ctx, "erasure"))

	left := map[string]bool{}
	rows, err := st.Pool.Query(ctx, `SELECT breach_id || '/' || seq FROM breach_recipients WHERE email IS NOT NULL`)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		left[k] = true
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]bool{"br-sent/2": true, "br-pending/1": true, "br-pending/2": true, "br-spa/1": true, "br-spa/2": true}, left,
		"only Ada's address in the salon's sent notice is cleared")
	var detail map[string]any
	require.NoError(t, st.Pool.QueryRow(ctx, `SELECT detail FROM audit_events WHERE action = 'subject.forgotten'`).Scan(&detail))
	assert.Equal(t, 1.0, detail["breach_notice_addresses"])
}

// An expired export is gone from the read model too, the recorded state included: a completed
// request read afterwards offers no download that would only find nothing.
func TestExpireExportLeavesNoDownloadBehind(t *testing.T) {
	ctx := context.Background()
	a, st, dir := newActivities(t)

	zip := dir.URI("salon/R-1/R-1-access.zip")
	writeExport(t, dir, zip, "PK")
	_, err := st.Pool.Exec(ctx, `INSERT INTO requests (id, tenant_id, type, status, regime, received_at, export_uri, export_sha256, export_bytes, state)
		VALUES ('R-1', 'salon', 'access', 'completed', 'gdpr', now(), $1, 'abc', 2, '{"request_id": "R-1", "status": "completed", "export": {"uri": "x", "sha256": "abc", "bytes": 2}}')`, zip)
	require.NoError(t, err)

	require.NoError(t, a.ExpireExport(ctx, activities.ExportExpiry{RequestID: "R-1", TenantID: "salon"}))
	require.NoError(t, a.ExpireExport(ctx, activities.ExportExpiry{RequestID: "R-1", TenantID: "salon"}), "a retry finds nothing left to do")

	var uri *string
	var state map[string]any
	require.NoError(t, st.Pool.QueryRow(ctx, `SELECT export_uri, state FROM requests WHERE id = 'R-1'`).Scan(&uri, &state))
	assert.Nil(t, uri)
	assert.NotContains(t, state, "export", "the recorded state offers no export")
	assert.Equal(t, "completed", state["status"])
	_, err = os.Stat(filepath.Join(dir.Root, "salon/R-1"))
	assert.True(t, os.IsNotExist(err), "the package is deleted")
}

// An erasure forgets the identifiers an expiry date kept for the subject: the date has nothing
// left to purge, and another subject's date stays.
func TestForgetSubjectForgetsTheirExpiryDate(t *testing.T) {
	ctx := context.Background()
	a, st, _ := newActivities(t)
	_, err := st.Pool.Exec(ctx, `INSERT INTO requests (id, tenant_id, type, status, regime, received_at) VALUES ('erasure', 'salon', 'erasure', 'in_progress', 'gdpr', now())`)
	require.NoError(t, err)
	_, err = st.Pool.Exec(ctx, `INSERT INTO request_subjects (request_id, tenant_id, email, proofs) VALUES ('erasure', 'salon', 'ada@example.com', '{"email": {}}')`)
	require.NoError(t, err)
	for _, e := range []store.Expiry{
		{ID: "exp-ada", TenantID: "salon", SubjectRef: "ref-ada", Identifiers: store.Identifiers{Email: "Ada@Example.com"}},
		{ID: "exp-bob", TenantID: "salon", SubjectRef: "ref-bob", Identifiers: store.Identifiers{Email: "bob@example.com"}},
		{ID: "exp-spa", TenantID: "spa", SubjectRef: "ref-ada", Identifiers: store.Identifiers{Email: "ada@example.com"}},
	} {
		e.SetBy, e.ExpiresAt, e.SetAt = "dpo", time.Now().Add(time.Hour), time.Now()
		_, err := st.Expiries().Set(ctx, st.Pool, e)
		require.NoError(t, err)
	}
	require.NoError(t, a.ForgetSubject(ctx, "erasure"))
	for id, forgotten := range map[string]bool{"exp-ada": true, "exp-bob": false, "exp-spa": false} {
		e, err := st.Expiries().Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, forgotten, e.Email == "" && e.PurgedAt != nil, id)
	}
	var n float64
	require.NoError(t, st.Pool.QueryRow(ctx, `SELECT (detail->>'expiry_dates')::float FROM audit_events WHERE action = 'subject.forgotten'`).Scan(&n))
	assert.EqualValues(t, 1, n)
}
