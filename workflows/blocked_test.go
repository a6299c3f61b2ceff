package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/workflows"
)

// closingNotice returns the blocked_closed notice the subject was sent; the test fails without one.
func (w *world) closingNotice(t *testing.T) activities.Notice {
	t.Helper()
	for _, n := range w.sent {
		if n.Kind == "blocked_closed" {
			return n
		}
	}
	t.Fatalf("no blocked_closed notice among %v", w.notices)
	return activities.Notice{}
}

// An erasure still blocked when its deadline nears is closed, and the subject, told earlier that
// erasure would follow, learns that it will not, why, and what they can do.
func TestErasureClosedAtDeadlineTellsTheSubjectWhy(t *testing.T) {
	w := newWorld(t)
	w.env.SetStartTime(received)
	w.answer = func(d activities.Dispatch, _ int) (domain.Output, error) {
		if d.Action == "block_check" {
			return domain.Output{Blocks: []connectors.Block{
				{Code: "active_booking", Reason: "You have a booking in March."},
				{Code: "outstanding_balance", Reason: "An invoice of 45.00 EUR is unpaid."},
			}}, nil
		}
		return domain.Output{}, nil
	}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeErasure))
	st := w.result(t)
	require.Equal(t, domain.StatusDenied, st.Status)
	require.Equal(t, []string{"acknowledgement", "blocked", "blocked_closed"}, w.notices)
	n := w.closingNotice(t)
	require.Equal(t, []any{"You have a booking in March.", "An invoice of 45.00 EUR is unpaid."}, anyList(n.Data["Reasons"]))
	require.Equal(t, "r1", n.Data["RequestID"])
	require.Equal(t, "notice:blocked_closed", w.log[len(w.log)-2], "told before the request shows closed")
}

// anyList reads a list from notice data, as it arrives after passing through the workflow.
func anyList(v any) []any {
	switch l := v.(type) {
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	case []any:
		return l
	}
	return nil
}
