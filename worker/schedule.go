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

// RetentionSchedule is the ID of the Temporal Schedule that starts a tenant's daily retention
// run, and the prefix of the workflows it starts.
func RetentionSchedule(tenant string) string { return "lethe-retention-" + tenant }

// EnsureRetentionSchedule creates the tenant's daily retention schedule, at hour (UTC), on
// taskQueue; one that exists is brought to that hour, so a changed setting takes effect at the
// next start.
func EnsureRetentionSchedule(ctx context.Context, c client.Client, taskQueue, tenant string, hour int) error {
	id := RetentionSchedule(tenant)
	spec := client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
		Hour: []client.ScheduleRange{{Start: hour}}, Comment: "tenant " + tenant + "'s daily retention run",
	}}}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: id, Spec: spec,
		Action: &client.ScheduleWorkflowAction{ID: id, Workflow: workflows.RetentionWorkflow, TaskQueue: taskQueue,
			Args: []any{workflows.RetentionInput{TenantID: tenant, Actor: "schedule"}}},
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		err = c.ScheduleClient().GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
			DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
				in.Description.Schedule.Spec = &spec
				return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
			},
		})
	}
	if err != nil {
		return fmt.Errorf("creating the Temporal schedule %s: %w", id, err)
	}
	return nil
}
