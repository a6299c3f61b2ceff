package workflows_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/workflows"
)

// A completed access request hands its export to the expiry, after the completion notice, for
// the tenant's period, on its own task queue; an erasure has no export to expire.
// (internal/e2e finds the delayed expiry workflow on the real Temporal server.)
func TestCompletedRequestStartsItsExportExpiry(t *testing.T) {
	w := newWorld(t)
	w.env.SetStartTime(received)
	in := input(domain.TypeAccess)
	in.Policy.ExportExpiry = 7 * 24 * time.Hour
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)
	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Less(t, indexOf(w.log, "notice:completion"), indexOf(w.log, "start-export-expiry"))
	require.Len(t, w.expiries, 1)
	e := w.expiries[0]
	require.Equal(t, in.RequestID, e.RequestID)
	require.Equal(t, in.TenantID, e.TenantID)
	require.NotEmpty(t, e.TaskQueue)
	// The test environment's clock has not moved: the request completed at its start time.
	require.WithinDuration(t, received.Add(7*24*time.Hour), e.ExpiresAt, time.Minute)
	require.NotContains(t, w.log, "expire-export", "the request's run deletes nothing itself")

	w = newWorld(t)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeErasure))
	require.Equal(t, domain.StatusCompleted, w.result(t).Status)
	require.Empty(t, w.expiries)
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// The expiry waits out its period (time skipped) and then the real activity deletes the
// request's package and connector files from a real export directory, and nothing else.
func TestExportExpiryDeletesTheExportWhenDue(t *testing.T) {
	ctx := context.Background()
	st := migratedStore(t)
	dir, err := exportstore.NewDir(t.TempDir())
	require.NoError(t, err)
	put := func(rel string) string {
		wr, err := dir.Create(ctx, dir.URI(rel))
		require.NoError(t, err)
		_, err = io.WriteString(wr, `{"email":"ada@example.com"}`)
		require.NoError(t, err)
		o, err := wr.Commit()
		require.NoError(t, err)
		return o.URI
	}
	zip := put("salon/r1/r1-access.zip")
	put("salon/r1/database/customers.jsonl")
	other := put("salon/r2/database/customers.jsonl")
	_, err = st.Pool.Exec(ctx, `INSERT INTO requests (id, tenant_id, type, status, regime, received_at, export_uri, export_sha256, export_bytes)
		VALUES ('r1', 'salon', 'access', 'completed', 'gdpr', now(), $1, 'x', 1)`, zip)
	require.NoError(t, err)

	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.ExportExpiryWorkflow)
	env.RegisterActivity(&activities.Activities{Store: st, Exports: dir, ExportBase: dir.URI("")})
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	keptUntilDue := false
	env.RegisterDelayedCallback(func() {
		_, err := os.Stat(filepath.Join(dir.Root, "salon/r1/r1-access.zip"))
		keptUntilDue = err == nil
	}, 30*24*time.Hour-time.Minute)
	env.ExecuteWorkflow(workflows.ExportExpiryWorkflow, workflows.ExportExpiryInput{RequestID: "r1", TenantID: "salon", ExpiresAt: start.Add(30 * 24 * time.Hour)})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.True(t, keptUntilDue, "the export is kept until it expires")

	_, err = os.Stat(filepath.Join(dir.Root, "salon/r1"))
	require.ErrorIs(t, err, os.ErrNotExist, "the package and the connector files are gone")
	_, err = os.Stat(strings.TrimPrefix(other, "file://"))
	require.NoError(t, err, "another request's files stay")
	var uri *string
	require.NoError(t, st.Pool.QueryRow(ctx, `SELECT export_uri FROM requests WHERE id = 'r1'`).Scan(&uri))
	require.Nil(t, uri)
	var files string
	require.NoError(t, st.Pool.QueryRow(ctx, `SELECT detail->>'export_files' FROM audit_events WHERE request_id = 'r1' AND action = 'request.export_expired'`).Scan(&files))
	require.Equal(t, "2", files)
}
