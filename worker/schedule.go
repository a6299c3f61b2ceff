package worker

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/workflows"
)

// DigestSchedule is the ID of the Temporal Schedule that starts DigestWorkflow, and of the
// workflows it starts.
const DigestSchedule = "lethe-slack-digest"

// DigestHour is the hour (UTC) the daily digest is posted.
const DigestHour = 7

// EnsureDigestSchedule creates the daily digest's schedule on taskQueue unless it exists: every
// worker calls it at start, and the first one creates it.
func EnsureDigestSchedule(ctx context.Context, c client.Client, taskQueue string) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: DigestSchedule,
		Spec: client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
			Hour: []client.ScheduleRange{{Start: DigestHour}}, Comment: "the daily Slack digest",
		}}},
		Action: &client.ScheduleWorkflowAction{ID: DigestSchedule, Workflow: workflows.DigestWorkflow, TaskQueue: taskQueue},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("creating the Temporal schedule %s: %w", DigestSchedule, err)
	}
	return nil
}
