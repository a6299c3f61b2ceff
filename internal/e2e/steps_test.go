package e2e_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
)

// A request's own steps (transitions recorded, notices sent) run as local activities in the
// worker: the only tasks the Temporal server schedules for an access request are the connector's
// command and the export, and the steps still reach the read model and the subject's inbox.
func TestRequestStepsAreNoServerTasks(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	ctx := context.Background()
	id := s.Submit(domain.TypeAccess, connectors.Subject{Email: demo.ClearCustomerEmail})
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)

	scheduled := map[string]int{}
	markers := 0
	it := s.Deps.Temporal.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[a.GetActivityType().GetName()]++
		}
		if m := e.GetMarkerRecordedEventAttributes(); m != nil && m.GetMarkerName() == "LocalActivity" {
			markers++
		}
	}
	require.Equal(t, map[string]int{"DispatchCommand": 1, "BuildExport": 1}, scheduled, "activities the server scheduled")
	require.GreaterOrEqual(t, markers, 6, "received, acknowledged, in progress, export ready, completion, completed")
	var completed int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE request_id = $1 AND action = 'request.completed'`, id).Scan(&completed))
	require.Equal(t, 1, completed)
	require.Len(t, s.mailTo(demo.ClearCustomerEmail), 3, "acknowledgement, export ready and completion, once each")
}
