package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
)

// DigestWorkflow posts the daily digest to each Slack tenant's channel: its requests due within
// activities.DigestDays days and its open breaches with the hours left on each running clock. A
// Temporal Schedule (worker.EnsureDigestSchedule) starts it every morning; a tenant whose post
// fails does not keep the others from theirs, and a rerun the same day posts nothing twice.
func DigestWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: []string{activities.ErrPermanent}},
	})
	var tenants []string
	if err := workflow.ExecuteActivity(ctx, a.SlackTenants).Get(ctx, &tenants); err != nil {
		return err
	}
	at := workflow.Now(ctx)
	var errs []error
	for _, tenant := range tenants {
		var d slackmsg.Digest
		err := workflow.ExecuteActivity(ctx, a.Digest, activities.DigestQuery{TenantID: tenant, At: at}).Get(ctx, &d)
		if err == nil {
			err = workflow.ExecuteActivity(ctx, a.PostDigest, activities.DigestPost{TenantID: tenant, Digest: d}).Get(ctx, nil)
		}
		if err != nil {
			workflow.GetLogger(ctx).Error("posting the Slack digest failed", "tenant", tenant, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
