package workflows

import (
	"strconv"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
)

// NoticeForgetInput starts the forgetting of the addresses one notice run told.
type NoticeForgetInput struct {
	BreachID string
	Run      int
	At       time.Time // when the addresses go (the run's end + mail.notice_retention)
}

// NoticeForgetWorkflow clears, at In.At, the addresses (email, phone, name) of the people a
// notice run told or failed for good: their notice is final and nothing needs them any more.
// Those Mailgun reported delivered or failed were cleared already by the webhook; this catches
// the rest. The people's numbers, sources, address keys and delivery status stay, so the
// register still counts them and nobody is told twice. The notice run starts it as an
// abandoned child, ID <breach>-notice-<run>-forget: a durable timer, as for request exports.
func NoticeForgetWorkflow(ctx workflow.Context, in NoticeForgetInput) (int64, error) {
	if wait := in.At.Sub(workflow.Now(ctx)); wait > 0 {
		if err := workflow.Sleep(ctx, wait); err != nil {
			return 0, err
		}
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Minute, MaximumInterval: time.Hour, NonRetryableErrorTypes: []string{activities.ErrPermanent}},
	})
	var n int64
	err := workflow.ExecuteActivity(ctx, a.ForgetNoticeAddresses, activities.NoticeForget{BreachID: in.BreachID, Run: in.Run}).Get(ctx, &n)
	return n, err
}

// forgetLater starts the run's NoticeForgetWorkflow and waits until it runs, so that it
// outlives the run.
func forgetLater(ctx workflow.Context, in BreachNoticeInput) error {
	id := in.BreachID + "-notice-" + strconv.Itoa(in.Run) + "-forget"
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: id, ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON})
	f := workflow.ExecuteChildWorkflow(cctx, NoticeForgetWorkflow, NoticeForgetInput{BreachID: in.BreachID, Run: in.Run, At: workflow.Now(ctx).Add(in.Retention)})
	err := f.GetChildWorkflowExecution().Get(ctx, nil)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return nil
	}
	return err
}
