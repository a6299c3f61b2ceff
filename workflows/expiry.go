package workflows

import (
	"strconv"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
)

// ExpiryChangedSignal tells a subject's expiry workflow that the date was set again: it reads
// the new date from the store.
const ExpiryChangedSignal = "expiry_changed"

// ExpiryRetry is how long a purge that failed (a connector down, a booking still to come)
// waits before it is tried again.
const ExpiryRetry = 24 * time.Hour

// expiryLongestWait is the longest one timer waits.
const expiryLongestWait = 30 * 24 * time.Hour

// expiryRounds bounds one history: a date moved again and again continues as new.
const expiryRounds = 100

// ExpiryWorkflowID is the ID of expiry id's workflow: one per subject of a tenant.
func ExpiryWorkflowID(id string) string { return "lethe-expiry-" + id }

// SubjectExpiryInput names the expiry; its date and subject stay in the store, so the history
// holds no identifier.
type SubjectExpiryInput struct {
	ExpiryID string
}

// SubjectExpiryWorkflow purges a subject when their expiry date passes: a durable timer to
// the date, then a purge of that subject through each of the tenant's connectors that purge
// (the same purge command the retention rules use, naming the subject). The API signals it
// when the date is set again; it then waits for the new date. A purge that fails is recorded
// and tried again a day later.
func SubjectExpiryWorkflow(ctx workflow.Context, in SubjectExpiryInput) error {
	changed := workflow.GetSignalChannel(ctx, ExpiryChangedSignal)
	rctx := workflow.WithActivityOptions(ctx, recordOptions)
	dctx := workflow.WithActivityOptions(ctx, purgeOptions)
	// wait sleeps for d unless the date changes first; it reports whether it did.
	wait := func(d time.Duration) bool {
		tctx, cancel := workflow.WithCancel(ctx)
		defer cancel()
		moved := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(tctx, d), func(workflow.Future) {})
		sel.AddReceive(changed, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); moved = true })
		sel.Select(ctx)
		return moved
	}
	for round := 0; round < expiryRounds; round++ {
		var st activities.ExpiryState
		if err := workflow.ExecuteActivity(rctx, a.LoadExpiry, in.ExpiryID).Get(ctx, &st); err != nil {
			return err
		}
		if st.Purged {
			return nil
		}
		if d := st.ExpiresAt.Sub(workflow.Now(ctx)); d > 0 {
			// A date years away is waited for a month at a time, keeping every timer short.
			wait(min(d, expiryLongestWait))
			continue // the date passed, came nearer or moved: read it again
		}
		p := purgeSubject(ctx, dctx, in.ExpiryID, st)
		if err := workflow.ExecuteActivity(rctx, a.RecordExpiryPurge, p).Get(ctx, nil); err != nil {
			return err
		}
		if len(p.Errors) == 0 {
			return nil
		}
		wait(ExpiryRetry)
	}
	return workflow.NewContinueAsNewError(ctx, SubjectExpiryWorkflow, in)
}

// purgeSubject sends the purge of the expiry's subject to each connector at once.
func purgeSubject(ctx, dctx workflow.Context, id string, st activities.ExpiryState) activities.ExpiryPurge {
	p := activities.ExpiryPurge{ExpiryID: id, ExpiresAt: st.ExpiresAt, Rows: map[string]int64{}, Errors: map[string]string{}}
	futures := make([]workflow.Future, len(st.Connectors))
	for i, name := range st.Connectors {
		futures[i] = workflow.ExecuteActivity(dctx, a.DispatchCommand, activities.Dispatch{
			RequestID: id, TenantID: st.TenantID, Connector: name, Action: string(connectors.CapPurge), ExpiryID: id,
			IdempotencyKey: id + ":" + strconv.FormatInt(st.ExpiresAt.Unix(), 10) + ":" + name + ":purge",
		})
	}
	for i, name := range st.Connectors {
		var out domain.Output
		var res connectors.PurgeResult
		err := futures[i].Get(ctx, &out)
		if err == nil {
			err = purgeResult(out, &res)
		}
		if err != nil {
			p.Errors[name] = errorMessage(err)
			continue
		}
		for _, table := range workflow.DeterministicKeys(res.Rows) {
			p.Rows[name] += res.Rows[table]
		}
	}
	return p
}
