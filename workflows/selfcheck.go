// Package workflows holds Lethe's deterministic Temporal workflows. No I/O, no time.Now, no
// goroutines and no map iteration here: everything with an effect is an activity.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
)

// SelfCheckInput names who asked for the check, for the audit trail.
type SelfCheckInput struct {
	RequestedBy string
}

// SelfCheckResult is what the worker saw of its dependencies.
type SelfCheckResult struct {
	Checks   map[string]string
	Finished time.Time
}

// SelfCheckWorkflow proves a worker is polling the task queue and that its activities reach
// PostgreSQL and Kafka. `lethe dev` runs it at start.
func SelfCheckWorkflow(ctx workflow.Context, in SelfCheckInput) (SelfCheckResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var a *activities.Activities
	var checks map[string]string
	if err := workflow.ExecuteActivity(ctx, a.SelfCheck, in.RequestedBy).Get(ctx, &checks); err != nil {
		return SelfCheckResult{}, err
	}
	return SelfCheckResult{Checks: checks, Finished: workflow.Now(ctx)}, nil
}
