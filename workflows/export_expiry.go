package workflows

import (
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
)

// ExportExpiryInput starts the expiry of one completed request's export.
type ExportExpiryInput = activities.ExportExpiryInput

// ExportExpiryWorkflow deletes a completed request's export (the ZIP and the connectors'
// files) when it expires. The request workflow has it started, as it completes, with a start
// delay that ends at the expiry (activities.StartExportExpiry; older runs started it as an
// abandoned child that slept): a durable timer per export, like every other deadline in Lethe,
// without keeping the request itself open for a month or scanning the store on a schedule. Its
// ID is activities.ExportExpiryID, so it exists once per request.
func ExportExpiryWorkflow(ctx workflow.Context, in ExportExpiryInput) error {
	if wait := in.ExpiresAt.Sub(workflow.Now(ctx)); wait > 0 {
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		// Deleting is idempotent: keep trying (an unreachable export store heals), but not
		// faster than once an hour.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Minute, MaximumInterval: time.Hour, NonRetryableErrorTypes: []string{activities.ErrPermanent}},
	})
	return workflow.ExecuteActivity(ctx, a.ExpireExport, activities.ExportExpiry{RequestID: in.RequestID, TenantID: in.TenantID}).Get(ctx, nil)
}

// expireExport starts the export's expiry, to run when it is due, and waits until it is
// started, so that it outlives the request workflow that is about to complete.
func (r *request) expireExport(ctx workflow.Context) error {
	if r.current {
		return r.step(ctx, recordOptions, a.StartExportExpiry, activities.ExportExpiryStart{
			ExportExpiryInput: ExportExpiryInput{RequestID: r.in.RequestID, TenantID: r.in.TenantID, ExpiresAt: workflow.Now(ctx).Add(r.in.Policy.ExportExpiry)},
			TaskQueue:         workflow.GetInfo(ctx).TaskQueueName,
		}).Get(ctx, nil)
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        activities.ExportExpiryID(r.in.RequestID),
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
	})
	f := workflow.ExecuteChildWorkflow(cctx, ExportExpiryWorkflow, ExportExpiryInput{
		RequestID: r.in.RequestID, TenantID: r.in.TenantID, ExpiresAt: workflow.Now(ctx).Add(r.in.Policy.ExportExpiry),
	})
	err := f.GetChildWorkflowExecution().Get(ctx, nil)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return nil // a reset run of this request: the first run's expiry is still waiting
	}
	return err
}
