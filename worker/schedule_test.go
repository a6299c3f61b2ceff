package worker_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/worker"
)

// The digest's schedule is created by the first worker to start and left as it is by the next.
func TestDigestScheduleIsCreatedOnce(t *testing.T) {
	ctx := context.Background()
	c := testenv.Temporal(t)
	queue := "digest-" + testenv.Suffix()
	require.NoError(t, worker.EnsureDigestSchedule(ctx, c, queue))
	require.NoError(t, worker.EnsureDigestSchedule(ctx, c, "another-queue"), "a second worker's start")
	h := c.ScheduleClient().GetHandle(ctx, worker.DigestSchedule)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })
	d, err := h.Describe(ctx)
	require.NoError(t, err)
	action, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	require.Equal(t, queue, action.TaskQueue, "the first worker's schedule stands")
	require.Equal(t, "DigestWorkflow", action.Workflow)
	require.Len(t, d.Schedule.Spec.Calendars, 1)
	require.Equal(t, []client.ScheduleRange{{Start: worker.DigestHour, End: worker.DigestHour, Step: 1}}, d.Schedule.Spec.Calendars[0].Hour)
}
