package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/deadline"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
)

// Names of the request workflow's query and updates. Updates carry human decisions and are
// checked by validators before they enter history.
const (
	QueryStatus          = "status"
	UpdateVerifyIdentity = "verify_identity"
	UpdateApprove        = "approve"
	UpdateDeny           = "deny"
	UpdateExtend         = "extend"
	UpdateRetry          = "retry"
	UpdateCancel         = "cancel"
	UpdateResendCode     = "resend_code"
	// UpdateAskInfo emails the subject staff's question (Decision.Reason) and records it.
	UpdateAskInfo = "ask_info"
)

// RequestInput starts a request workflow. The workflow ID is RequestID. It deliberately
// carries no subject identifiers: activities read them from Lethe's database by request id,
// so Temporal's history never holds them and an erasure can forget the last copy.
type RequestInput struct {
	RequestID string
	TenantID  string
	Type      string
	// ChangedFields names the fields a rectification corrects; the values stay in Lethe's
	// database with the subject.
	ChangedFields []string
	ReceivedAt    time.Time
	Channel       string
	// IdentityVerified is true when the host app vouched for the subject (signed assertion).
	IdentityVerified bool
	Policy           domain.Policy
}

// Decision is the payload of approve, deny, extend, retry and cancel updates.
type Decision struct {
	Actor  string
	Reason string
}

// Verification is the payload of the verify_identity update.
type Verification struct {
	Method string // one of VerificationMethods
	Actor  string
}

// CodeResend is the payload of the resend_code update: the subject asked for a new code.
type CodeResend struct {
	// At is when the subject asked, on the clock of the Lethe process that checks the code.
	At time.Time
	// Channel is the channel asked for (email, sms); "" is the one the first code took.
	Channel string `json:",omitempty"`
}

// VerificationMethods: a one-time code sent by email or by text (each proving the address it
// reached), a host app's signed assertion, or staff who checked the subject's identity
// themselves (in person, by phone).
var VerificationMethods = []string{"email_code", "sms_code", "assertion", "staff"}

// CodeChannels are the channels the resend_code update takes ("" too).
var CodeChannels = []string{"email", "sms"}

// request is the workflow's working state; its methods read like the lifecycle.
type request struct {
	in    RequestInput
	state domain.RequestState
	seq   int
	codes int // codes resent

	verified bool
	// method is how the subject's identity was verified.
	method   string
	approved bool
	denied   bool
	canceled bool
	retry    bool
	decision Decision
	// actor is who caused the next recorded transition; "lethe" when nobody did.
	actor string
	// recorded is the last status the read model holds.
	recorded string
	// preflight is the erasure's block check shown in the Slack approval message.
	preflight *slackmsg.Preflight
	// localSteps runs the recording steps as local activities (see step).
	localSteps bool
	// current is a run from version request-2026-12 on (see since).
	current bool

	dueChanged workflow.Channel
	due        time.Time
	loc        *time.Location
}

var a *activities.Activities

// RequestWorkflow drives one data-subject request from receipt to closure. Whatever ends it
// with an error, the read model, the audit trail and lethe.events say so before it closes.
func RequestWorkflow(ctx workflow.Context, in RequestInput) (domain.RequestState, error) {
	in.Policy = withDefaults(in.Policy)
	r := &request{
		in:         in,
		state:      domain.RequestState{RequestID: in.RequestID, TenantID: in.TenantID, Type: in.Type, ReceivedAt: in.ReceivedAt},
		dueChanged: workflow.NewChannel(ctx),
	}
	st, err := r.run(ctx)
	if err != nil {
		r.recordClosure(ctx, err)
		st = r.state
	}
	return st, err
}

// run is the lifecycle itself.
func (r *request) run(ctx workflow.Context) (domain.RequestState, error) {
	in := r.in
	loc, err := time.LoadLocation(in.Policy.TimeZone)
	if err != nil {
		return r.state, temporal.NewNonRetryableApplicationError("unknown time zone "+in.Policy.TimeZone, "invalid_input", err)
	}
	r.loc = loc
	r.current = workflow.GetVersion(ctx, currentVersion, workflow.DefaultVersion, 1) == 1
	r.localSteps = r.since(ctx, "local-steps")
	if err := r.registerHandlers(ctx); err != nil {
		return r.state, err
	}
	ctx = workflow.WithActivityOptions(ctx, recordOptions)

	if err := r.moveTo(ctx, domain.StatusReceived, "request.received", "received via "+cmp.Or(in.Channel, "api"), nil); err != nil {
		return r.state, err
	}
	clockCtx, stopClock := workflow.WithCancel(ctx)
	defer stopClock()
	if in.Policy.ClockStart != "verification" {
		if err := r.startClock(ctx, clockCtx, in.ReceivedAt); err != nil {
			return r.state, err
		}
	}

	if !in.IdentityVerified {
		if err := r.moveTo(ctx, domain.StatusIdentityPending, "request.identity_pending", "", nil); err != nil {
			return r.state, err
		}
		if r.since(ctx, "identity-email-code") && !r.verified {
			r.issueCode(ctx)
		}
		ok, err := workflow.AwaitWithTimeout(ctx, in.Policy.IdentityTimeout, func() bool { return r.verified || r.canceled })
		if err != nil {
			return r.state, err
		}
		if r.canceled {
			return r.finish(ctx, domain.StatusCanceled, "request.canceled", r.decision.Reason)
		}
		if !ok {
			r.notify(ctx, "identity_expired", nil)
			return r.finish(ctx, domain.StatusCanceled, "request.identity_expired", "identity not verified in time")
		}
	} else {
		r.method = "vouched for by " + cmp.Or(in.Channel, "api")
		r.markVerified(workflow.Now(ctx))
	}
	if r.state.ClockStartedAt == nil {
		if err := r.startClock(ctx, clockCtx, *r.state.IdentityVerifiedAt); err != nil {
			return r.state, err
		}
	}
	r.notify(ctx, "acknowledgement", map[string]any{"DueDate": r.state.DueDate})

	if in.Policy.ManualApproval {
		if err := r.moveTo(ctx, domain.StatusPendingApproval, "request.pending_approval", "", nil); err != nil {
			return r.state, err
		}
		inSlack := in.Policy.SlackApproval && r.since(ctx, "slack-approval")
		if inSlack {
			r.askInSlack(ctx, nil)
		}
		if err := workflow.Await(ctx, func() bool { return r.approved || r.denied || r.canceled }); err != nil {
			return r.state, err
		}
		if inSlack {
			outcome := map[bool]string{true: "approved", false: "denied"}[r.approved]
			if r.canceled {
				outcome = "canceled"
			}
			r.askInSlack(ctx, &slackmsg.Decision{Outcome: outcome, Actor: r.decision.Actor, At: workflow.Now(ctx)})
		}
		switch {
		case r.canceled:
			return r.finish(ctx, domain.StatusCanceled, "request.canceled", r.decision.Reason)
		case r.denied:
			r.state.DenialReason = r.decision.Reason
			r.notify(ctx, "denial", map[string]any{"Reason": r.decision.Reason})
			return r.finish(ctx, domain.StatusDenied, "request.denied", r.decision.Reason)
		}
		r.state.ApprovedBy = r.decision.Actor
	}

	if in.Type == domain.TypeErasure {
		closed, err := r.awaitUnblocked(ctx)
		if err != nil || closed {
			return r.state, err
		}
	}
	if r.canceled {
		return r.finish(ctx, domain.StatusCanceled, "request.canceled", r.decision.Reason)
	}
	return r.perform(ctx)
}

// perform runs the type's work, and on partial failure waits for staff to retry the failed
// connectors.
func (r *request) perform(ctx workflow.Context) (domain.RequestState, error) {
	for {
		if err := r.moveTo(ctx, domain.StatusInProgress, "request.in_progress", "", nil); err != nil {
			return r.state, err
		}
		err := r.work(ctx)
		if err == nil {
			return r.complete(ctx)
		}
		// Cleared before the status says failed: a retry may arrive while the transition is
		// still being recorded, and must not be lost.
		r.retry = false
		if err := r.moveTo(ctx, domain.StatusFailed, "request.failed", "", map[string]any{"error": err.Error(), "failed": r.failedConnectors()}); err != nil {
			return r.state, err
		}
		ok, aerr := workflow.AwaitWithTimeout(ctx, r.in.Policy.RetryWindow, func() bool { return r.retry || r.canceled })
		if aerr != nil {
			return r.state, aerr
		}
		if r.canceled {
			return r.finish(ctx, domain.StatusCanceled, "request.canceled", r.decision.Reason)
		}
		if !ok {
			// Nobody retried: the request stays failed, and its history says so.
			return r.state, temporal.NewNonRetryableApplicationError("nobody retried the failed connectors within the retry window: "+err.Error(), "request_failed", nil)
		}
	}
}

// work runs what the request type asks for. It returns the aggregated connector failures.
func (r *request) work(ctx workflow.Context) error {
	switch r.in.Type {
	case domain.TypeAccess, domain.TypePortability:
		if err := r.fanOut(ctx, "access", nil); err != nil {
			return err
		}
		return r.buildExport(ctx)
	case domain.TypeRectification:
		return r.fanOut(ctx, "rectify", nil)
	case domain.TypeErasure:
		return r.fanOut(ctx, "erase", nil)
	case domain.TypeRestriction:
		return r.fanOut(ctx, "restrict", nil)
	case domain.TypeObjection:
		// Marketing stops at once: the ledger first, then every connector that can restrict.
		// The withdrawal dates from when the objection was received, so a consent the subject
		// gave again after it (recorded while the request ran) still stands.
		at := r.in.ReceivedAt
		if at.IsZero() {
			at = workflow.Now(ctx)
		}
		if err := workflow.ExecuteActivity(ctx, a.RecordConsent, activities.ConsentChange{
			Key: r.in.RequestID + ":consent", RequestID: r.in.RequestID, TenantID: r.in.TenantID,
			Purpose: "marketing", Granted: false, Source: "objection", At: at,
		}).Get(ctx, nil); err != nil {
			return err
		}
		return r.fanOut(ctx, "restrict", map[string]any{"purpose": "marketing"})
	}
	return temporal.NewNonRetryableApplicationError("unknown request type "+r.in.Type, "invalid_input", nil)
}

// complete tells the subject and closes the request. For erasure the completion email goes
// out before Lethe forgets the address, the last copy it holds.
func (r *request) complete(ctx workflow.Context) (domain.RequestState, error) {
	data := map[string]any{}
	if r.state.Export != nil {
		r.notify(ctx, "export_ready", map[string]any{"SHA256": r.state.Export.SHA256})
	}
	if r.in.Type == domain.TypeRectification {
		data["Fields"] = r.in.ChangedFields
		// Art. 19: recipients of the data learn which fields were corrected (names, never
		// values) from a request.rectified event on lethe.events.
		if r.since(ctx, "rectified-event") {
			if err := r.record(ctx, r.state.Status, "request.rectified", "", map[string]any{"fields": r.in.ChangedFields}, ""); err != nil {
				return r.state, err
			}
		}
	}
	r.notify(ctx, "completion", data)
	if r.state.Export != nil && r.since(ctx, "export-expiry") {
		if err := r.expireExport(ctx); err != nil {
			return r.state, err
		}
	}
	if r.in.Type == domain.TypeErasure {
		if err := r.step(ctx, recordOptions, a.ForgetSubject, r.in.RequestID).Get(ctx, nil); err != nil {
			return r.state, err
		}
	}
	return r.finish(ctx, domain.StatusCompleted, "request.completed", "")
}

// awaitUnblocked asks every block-checking connector whether erasure may proceed. It returns
// closed=true when the request ended (denied as blocked, or canceled).
func (r *request) awaitUnblocked(ctx workflow.Context) (closed bool, err error) {
	told := ""
	for {
		blocks, err := r.blockCheck(ctx)
		if err != nil {
			return false, err
		}
		r.state.Blocks = blocks
		if len(blocks) == 0 {
			return false, nil
		}
		reasons := blockReasons(blocks)
		if err := r.moveTo(ctx, domain.StatusBlocked, "request.blocked", strings.Join(reasons, "; "), map[string]any{"blocks": blockCodes(blocks)}); err != nil {
			return false, err
		}
		closeAt := r.due.Add(-r.in.Policy.CloseBlockedBefore)
		wait := r.in.Policy.RecheckEvery
		if until := closeAt.Sub(workflow.Now(ctx)); until < wait {
			wait = until
		}
		closing := r.in.Policy.BlockedErasure == "close" || wait <= 0
		// Version 1 tells the subject when the request is closed still blocked, and does not
		// first promise an erasure that will not follow.
		closingNotice := r.since(ctx, "blocked-closed-notice")
		if key := strings.Join(blockCodes(blocks), ","); key != told && !(closing && closingNotice) {
			r.notify(ctx, "blocked", map[string]any{"Reasons": reasons})
			told = key
		}
		if closing {
			reason := "erasure blocked: " + strings.Join(reasons, "; ")
			r.state.DenialReason = reason
			if closingNotice {
				r.notify(ctx, "blocked_closed", map[string]any{"Reasons": reasons})
			}
			_, err := r.finish(ctx, domain.StatusDenied, "request.denied_blocked", reason)
			return true, err
		}
		if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.canceled }); err != nil {
			return false, err
		}
		if r.canceled {
			_, err := r.finish(ctx, domain.StatusCanceled, "request.canceled", r.decision.Reason)
			return true, err
		}
	}
}

func (r *request) blockCheck(ctx workflow.Context) ([]connectors.Block, error) {
	var blocks []connectors.Block
	err := r.fanOut(ctx, "block_check", nil)
	for _, o := range r.state.Connectors {
		if o.Action == "block_check" && o.Output != nil {
			blocks = append(blocks, o.Output.Blocks...)
		}
	}
	return blocks, err
}

// fanOut sends action to every connector that supports it, in parallel, and waits for all.
// Connectors that already succeeded at this action are skipped, so a retry after a partial
// failure reaches only the failed ones. Failures are aggregated, never dropped.
func (r *request) fanOut(ctx workflow.Context, action string, params map[string]any) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: r.in.Policy.ConnectorTimeout,
		StartToCloseTimeout:    time.Hour,
		HeartbeatTimeout:       2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        10 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrPermanent},
		},
	})
	type call struct {
		idx int
		f   workflow.Future
	}
	var calls []call
	for _, c := range r.in.Policy.Connectors {
		if !c.Has(action) {
			continue
		}
		idx := r.outcome(c.Name, action)
		if action != "block_check" && r.state.Connectors[idx].Status == "succeeded" {
			continue
		}
		r.state.Connectors[idx].Status, r.state.Connectors[idx].Error = "pending", ""
		d := activities.Dispatch{
			RequestID: r.in.RequestID, TenantID: r.in.TenantID, Connector: c.Name, Action: action,
			IdempotencyKey: r.in.RequestID + ":" + c.Name + ":" + action, Params: params,
		}
		if action == "block_check" {
			// Each check is a new question: the answer may differ from yesterday's.
			d.IdempotencyKey += ":" + strconv.Itoa(r.seq)
		}
		if action == "access" {
			d.ExportLocation = strings.TrimSuffix(r.in.Policy.ExportBase, "/") + "/" + r.in.TenantID + "/" + r.in.RequestID
		}
		calls = append(calls, call{idx, workflow.ExecuteActivity(actx, a.DispatchCommand, d)})
	}
	var errs *multierror.Error
	for _, c := range calls {
		o := &r.state.Connectors[c.idx]
		var out domain.Output
		if err := c.f.Get(ctx, &out); err != nil {
			o.Status, o.Error = "failed", errorMessage(err)
			errs = multierror.Append(errs, fmt.Errorf("%s %s: %s", o.Connector, action, o.Error))
			continue
		}
		o.Status, o.Output = "succeeded", &out
	}
	return errs.ErrorOrNil()
}

func (r *request) outcome(connector, action string) int {
	for i, o := range r.state.Connectors {
		if o.Connector == connector && o.Action == action {
			return i
		}
	}
	r.state.Connectors = append(r.state.Connectors, domain.ConnectorOutcome{Connector: connector, Action: action, Status: "pending"})
	return len(r.state.Connectors) - 1
}

func (r *request) failedConnectors() []string {
	var out []string
	for _, o := range r.state.Connectors {
		if o.Status == "failed" {
			out = append(out, o.Connector+" "+o.Action)
		}
	}
	return out
}

func (r *request) buildExport(ctx workflow.Context) error {
	sources := map[string][]domain.ExportRef{}
	for _, o := range r.state.Connectors {
		if o.Action == "access" && o.Output != nil {
			sources[o.Connector] = o.Output.Exports
		}
	}
	var pkg activities.ExportPackage
	err := workflow.ExecuteActivity(ctx, a.BuildExport, activities.ExportRequest{
		RequestID: r.in.RequestID, TenantID: r.in.TenantID, Kind: r.in.Type, Sources: sources, At: workflow.Now(ctx),
	}).Get(ctx, &pkg)
	if err != nil {
		return fmt.Errorf("building the export package: %w", err)
	}
	r.state.Export = &domain.ExportInfo{URI: pkg.URI, SHA256: pkg.SHA256, Bytes: pkg.Bytes}
	return nil
}

// startClock fixes the due date from the moment the clock starts and runs the reminders.
func (r *request) startClock(ctx, clockCtx workflow.Context, from time.Time) error {
	t := from.In(r.loc)
	r.state.ClockStartedAt = &t
	if err := r.computeDue(); err != nil {
		return err
	}
	workflow.Go(clockCtx, r.runClock)
	return nil
}

func (r *request) computeDue() error {
	rule := deadline.Rule{Regime: deadline.Regime(r.in.Policy.Regime), Country: r.in.Policy.Country}
	due, err := deadline.Due(*r.state.ClockStartedAt, rule, r.state.Extended)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("computing the due date: "+err.Error(), "invalid_input", err)
	}
	r.due = due
	r.state.DueDate = due.Format(deadline.DateLayout)
	return nil
}

// runClock sends each reminder before the due date and escalates once overdue. An extension
// moves the due date; the clock then plans again from the new one.
func (r *request) runClock(ctx workflow.Context) {
	sent := map[string]bool{}
	for {
		type alarm struct {
			at   time.Time
			kind string
		}
		var next *alarm
		for _, at := range deadline.Reminders(r.due, r.in.Policy.Reminders) {
			key := "reminder:" + at.Format(time.RFC3339)
			if !sent[key] && at.After(workflow.Now(ctx)) {
				next = &alarm{at, "reminder"}
				break
			}
		}
		if next == nil && !sent["overdue:"+r.state.DueDate] {
			next = &alarm{deadline.OverdueAt(r.due), "overdue"}
		}
		moved := false
		sel := workflow.NewSelector(ctx).
			AddReceive(r.dueChanged, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); moved = true }).
			AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		// With everything fired, only an extension (a new due date) wakes the clock.
		cancelTimer := func() {}
		if next != nil {
			var timerCtx workflow.Context
			timerCtx, cancelTimer = workflow.WithCancel(ctx)
			sel.AddFuture(workflow.NewTimer(timerCtx, max(next.at.Sub(workflow.Now(ctx)), 0)), func(workflow.Future) {})
		}
		sel.Select(ctx)
		cancelTimer()
		if ctx.Err() != nil {
			return
		}
		if moved || next == nil {
			continue
		}
		key := next.kind + ":" + next.at.Format(time.RFC3339)
		if next.kind == "overdue" {
			key = "overdue:" + r.state.DueDate
		}
		sent[key] = true
		r.seq++
		err := workflow.ExecuteActivity(ctx, a.Remind, activities.Reminder{
			Key: r.in.RequestID + ":" + r.alarmKey(ctx, next.kind, next.at), RequestID: r.in.RequestID, TenantID: r.in.TenantID,
			Kind: next.kind, DueDate: r.state.DueDate, At: workflow.Now(ctx),
		}).Get(ctx, nil)
		if err != nil && ctx.Err() == nil {
			// The clock goes on to the next alarm; the failure is not left unseen.
			r.reportFailure(ctx, "Remind", err)
		}
	}
}

// alarmKey names one reminder or escalation in the audit trail and on lethe.events. Reminders
// were once keyed by their time in the tenant's zone, whose "+01:00" the event schema refuses;
// histories that recorded such keys replay with them. The version is decided per reminder, so a
// request that was stuck on an old key gets its later reminders under the new one.
func (r *request) alarmKey(ctx workflow.Context, kind string, at time.Time) string {
	if kind == "overdue" {
		return "overdue:" + r.state.DueDate
	}
	utc := kind + ":" + at.UTC().Format(time.RFC3339)
	if !r.since(ctx, "reminder-key-utc:"+utc) {
		return kind + ":" + at.Format(time.RFC3339)
	}
	return utc
}

// reportFailure surfaces an activity that failed for good where the workflow carries on without
// it: audit trail, lethe.events and the worker's log.
func (r *request) reportFailure(ctx workflow.Context, activity string, err error) {
	r.seq++
	_ = workflow.ExecuteActivity(ctx, a.ReportFailure, activities.Failure{
		Key: r.in.RequestID + ":failed:" + strconv.Itoa(r.seq), RequestID: r.in.RequestID, TenantID: r.in.TenantID,
		Activity: activity, Reason: errorMessage(err), At: workflow.Now(ctx),
	}).Get(ctx, nil)
}

func (r *request) markVerified(at time.Time) {
	t := at
	r.state.IdentityVerifiedAt = &t
	r.verified = true
}

func (r *request) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (domain.RequestState, error) { return r.state, nil }); err != nil {
		return err
	}
	updates := []struct {
		name     string
		handler  any
		validate any
	}{
		{UpdateVerifyIdentity,
			func(ctx workflow.Context, v Verification) (domain.RequestState, error) {
				r.method = v.Method
				r.markVerified(workflow.Now(ctx))
				r.note(ctx, "identity verified by "+v.Method)
				return r.state, nil
			},
			func(v Verification) error {
				if err := r.awaitingIdentity(); err != nil {
					return err
				}
				if !slices.Contains(VerificationMethods, v.Method) {
					return fmt.Errorf("verification method %q must be one of %s", v.Method, strings.Join(VerificationMethods, ", "))
				}
				return nil
			}},
		{UpdateResendCode,
			func(ctx workflow.Context, c CodeResend) (activities.CodeSent, error) {
				return r.resendCode(ctx, c)
			},
			func(c CodeResend) error {
				if c.Channel != "" && !slices.Contains(CodeChannels, c.Channel) {
					return fmt.Errorf("code channel %q must be one of %s", c.Channel, strings.Join(CodeChannels, ", "))
				}
				return r.awaitingIdentity()
			}},
		{UpdateApprove,
			func(ctx workflow.Context, d Decision) (domain.RequestState, error) {
				r.approved, r.decision = true, d
				r.actor = d.Actor
				r.note(ctx, "approved by "+d.Actor)
				return r.state, nil
			},
			func(d Decision) error { return r.validateDecision(d, false, domain.StatusPendingApproval) }},
		{UpdateDeny,
			func(ctx workflow.Context, d Decision) (domain.RequestState, error) {
				r.denied, r.decision = true, d
				r.actor = d.Actor
				return r.state, nil
			},
			func(d Decision) error { return r.validateDecision(d, true, domain.StatusPendingApproval) }},
		{UpdateExtend,
			func(ctx workflow.Context, d Decision) (domain.RequestState, error) {
				// An update handler's context does not inherit the main coroutine's options.
				ctx = workflow.WithActivityOptions(ctx, recordOptions)
				r.state.Extended, r.state.ExtensionReason = true, d.Reason
				if err := r.computeDue(); err != nil {
					return r.state, err
				}
				r.dueChanged.SendAsync(true)
				r.notify(ctx, "extension", map[string]any{"Reason": d.Reason, "NewDueDate": r.state.DueDate})
				if err := r.record(ctx, r.state.Status, "request.extended", "extended to "+r.state.DueDate, map[string]any{"reason": d.Reason}, d.Actor); err != nil {
					return r.state, err
				}
				return r.state, nil
			},
			func(d Decision) error {
				if err := r.validateDecision(d, true, ""); err != nil {
					return err
				}
				if r.state.Extended {
					return errors.New("request is already extended")
				}
				if r.state.DueDate == "" {
					return errors.New("the deadline clock has not started yet")
				}
				return nil
			}},
		{UpdateAskInfo,
			func(ctx workflow.Context, d Decision) (domain.RequestState, error) {
				return r.askInfo(ctx, d)
			},
			func(d Decision) error { return r.validateDecision(d, true, "") }},
		{UpdateRetry,
			func(ctx workflow.Context, d Decision) (domain.RequestState, error) {
				r.retry, r.decision = true, d
				r.actor = d.Actor
				return r.state, nil
			},
			func(d Decision) error { return r.validateDecision(d, false, domain.StatusFailed) }},
		{UpdateCancel,
			func(ctx workflow.Context, d Decision) (domain.RequestState, error) {
				r.canceled, r.decision = true, d
				r.actor = d.Actor
				return r.state, nil
			},
			func(d Decision) error {
				if err := r.validateDecision(d, true, ""); err != nil {
					return err
				}
				if r.state.Status == domain.StatusInProgress {
					return errors.New("request is in progress and can no longer be canceled")
				}
				return nil
			}},
	}
	for _, u := range updates {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{Validator: u.validate}); err != nil {
			return err
		}
	}
	return nil
}

// awaitingIdentity says why the request takes no identity proof (and no new code), or nil.
func (r *request) awaitingIdentity() error {
	// received counts too: a subject may hold a code (asked for one) a moment before the
	// workflow records identity_pending.
	if r.verified || (r.state.Status != domain.StatusIdentityPending && r.state.Status != domain.StatusReceived) {
		return fmt.Errorf("request is %s, not waiting for identity verification", r.state.Status)
	}
	return nil
}

// validateDecision checks a human decision: an actor always, a reason where the subject must
// be told why, and the status the decision applies to ("" for any open status).
func (r *request) validateDecision(d Decision, needReason bool, status string) error {
	if strings.TrimSpace(d.Actor) == "" {
		return errors.New("the decision needs an actor")
	}
	if needReason && strings.TrimSpace(d.Reason) == "" {
		return errors.New("the decision needs a reason, which is sent to the subject")
	}
	if domain.Terminal(r.state.Status) {
		return fmt.Errorf("request is already %s", r.state.Status)
	}
	if status != "" && r.state.Status != status {
		return fmt.Errorf("request is %s, not %s", r.state.Status, status)
	}
	return nil
}

// moveTo records a transition: status, audit event, read model and lethe.events.
func (r *request) moveTo(ctx workflow.Context, status, action, note string, detail map[string]any) error {
	r.state.Status = status
	r.state.Steps = append(r.state.Steps, domain.Step{At: workflow.Now(ctx), Status: status, Note: note})
	return r.record(ctx, status, action, note, detail, "")
}

// note adds a timeline entry without changing status (recorded with the next transition).
func (r *request) note(ctx workflow.Context, text string) {
	r.state.Steps = append(r.state.Steps, domain.Step{At: workflow.Now(ctx), Status: r.state.Status, Note: text})
}

func (r *request) record(ctx workflow.Context, status, action, note string, detail map[string]any, actor string) error {
	r.seq++
	if actor == "" {
		actor, r.actor = cmp.Or(r.actor, "lethe"), ""
	}
	if detail == nil {
		detail = map[string]any{}
	}
	if note != "" {
		detail["note"] = note
	}
	err := r.step(ctx, recordOptions, a.RecordTransition, activities.Transition{
		Key: r.in.RequestID + ":" + strconv.Itoa(r.seq), RequestID: r.in.RequestID, TenantID: r.in.TenantID,
		Type: r.in.Type, Status: status, Extended: r.state.Extended, Regime: r.in.Policy.Regime,
		Country: r.in.Policy.Country, ReceivedAt: r.in.ReceivedAt, DueDate: r.state.DueDate,
		Actor: actor, Action: action, At: workflow.Now(ctx), State: r.state, Detail: detail,
	}).Get(ctx, nil)
	if err == nil {
		r.recorded = status
	}
	return err
}

// recordClosure records that the workflow ends with err: status failed, the reason in words
// a DPO can act on, and the state marked closed, so no surface shows a live status for a
// request nothing works on any more. It runs on a disconnected context, so a workflow canceled
// in Temporal still records why it ended. Should the record itself fail, the reconciliation
// (requests.Service.Reconcile) repairs the read model from Temporal's close event.
func (r *request) recordClosure(ctx workflow.Context, err error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	// Histories that failed before this handler existed closed right after the error.
	if !r.since(dctx, "record-closure") {
		return
	}
	closeStatus, cause := "failed", errorMessage(err)
	if temporal.IsCanceledError(err) {
		closeStatus, cause = "canceled", "it was canceled in Temporal"
	}
	reason := ClosureReason(closeStatus, cause, r.state.Status, r.state.DueDate)
	r.state.Closed, r.state.FailureReason = true, reason
	_ = r.moveTo(workflow.WithActivityOptions(dctx, recordOptions), domain.StatusFailed, ActionClosed, reason,
		map[string]any{"close_status": closeStatus, "phase": r.phase()})
}

// phase is the status the request showed when its workflow closed.
func (r *request) phase() string { return cmp.Or(r.recorded, domain.StatusReceived) }

// ActionClosed is the audit action and event type of a request whose workflow closed without
// finishing it (failure, timeout, termination, cancellation in Temporal).
const ActionClosed = "request.closed"

// ClosureReason says, for the DPO, why a request's workflow closed and what to do now.
// closeStatus is Temporal's close status in lower case (failed, timed_out, terminated,
// canceled); cause is what Temporal recorded; phase is the status the request was in.
func ClosureReason(closeStatus, cause, phase, dueDate string) string {
	what := map[string]string{
		"failed":     "Lethe stopped working on this request because its workflow failed",
		"timed_out":  "Lethe stopped working on this request because its workflow ran past its time limit in Temporal",
		"terminated": "Lethe stopped working on this request because its workflow was terminated in Temporal",
		"canceled":   "Lethe stopped working on this request because its workflow was canceled in Temporal",
		"unknown":    "Lethe stopped working on this request: Temporal no longer has its workflow, so how it ended is unknown",
	}[closeStatus]
	if what == "" {
		what = "Lethe stopped working on this request because its workflow closed (" + closeStatus + ")"
	}
	msg := what + " while it was " + phaseWords(phase)
	if cause = strings.TrimSpace(cause); cause != "" {
		msg += ": " + strings.TrimSuffix(cause, ".")
	}
	msg += ". Nothing more happens on its own: fix the cause and submit the request again, or answer the subject another way"
	if dueDate != "" {
		msg += " by " + dueDate
	}
	return msg + "."
}

func phaseWords(status string) string {
	switch status {
	case domain.StatusIdentityPending:
		return "waiting for identity verification"
	case domain.StatusPendingApproval:
		return "waiting for approval"
	case domain.StatusFailed:
		return "failed and waiting for a retry"
	}
	return strings.ReplaceAll(status, "_", " ")
}

func (r *request) finish(ctx workflow.Context, status, action, note string) (domain.RequestState, error) {
	err := r.moveTo(ctx, status, action, note, nil)
	return r.state, err
}

// notify tells the subject. A notice that cannot be sent is recorded by the activity and does
// not stop the request: the legal answer is the work itself, and staff see the failure.
func (r *request) notify(ctx workflow.Context, kind string, data map[string]any) {
	r.seq++
	if data == nil {
		data = map[string]any{}
	}
	data["RequestID"] = r.in.RequestID
	data["RequestType"] = r.in.Type
	if r.state.DueDate != "" {
		if _, ok := data["DueDate"]; !ok {
			data["DueDate"] = r.state.DueDate
		}
	}
	_ = r.step(ctx, notifyOptions, a.NotifySubject, activities.Notice{
		Key: r.in.RequestID + ":" + kind + ":" + strconv.Itoa(r.seq), RequestID: r.in.RequestID,
		TenantID: r.in.TenantID, Kind: kind, Data: data,
	}).Get(ctx, nil)
}

var notifyOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: []string{activities.ErrPermanent}},
}

// currentVersion marks runs that take every change before it (local-steps, identity-email-code,
// slack-approval, rectified-event, export-expiry, blocked-closed-notice, reminder-key-utc,
// record-closure) without a marker of their own, and two of their own: the verification code
// is a local step, and the export's expiry is started with a delay rather than as a child
// workflow. Each GetVersion marker costs an upserted search attribute, each child a workflow
// task more in the request and one in the child: Temporal's work per request is what limits
// throughput (README, Performance).
const currentVersion = "request-2026-12"

// since reports whether this run takes the change changeID: every run from currentVersion on
// does, an older one as its history recorded.
func (r *request) since(ctx workflow.Context, changeID string) bool {
	return r.current || workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) == 1
}

// step runs one of the request's own steps (a transition recorded, a notice sent, the subject
// forgotten) with opts. From version local-steps on it is a local activity: the worker runs it
// inside the workflow task that reached it, so a step costs the Temporal server no task of its
// own to schedule, hand out and hear back from, and a request's history a few events instead
// of three. Profiling lethe bench found the Temporal server the bottleneck, at about three
// times the CPU per request of the worker. The activities are idempotent by their keys, as a
// retried local activity needs. Histories from before schedule them as activities.
func (r *request) step(ctx workflow.Context, opts workflow.ActivityOptions, activity, arg any) workflow.Future {
	if !r.localSteps {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), activity, arg)
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: opts.StartToCloseTimeout, RetryPolicy: opts.RetryPolicy,
	})
	// A local activity gets its argument as it is, sharing the state's slices with the
	// workflow; it gets the copy a scheduled one would decode instead.
	copied := reflect.New(reflect.TypeOf(arg))
	dc := converter.GetDefaultDataConverter()
	p, err := dc.ToPayload(arg)
	if err == nil {
		err = dc.FromPayload(p, copied.Interface())
	}
	if err != nil {
		f, set := workflow.NewFuture(ctx)
		set.SetError(temporal.NewNonRetryableApplicationError("copying the argument of a step: "+err.Error(), activities.ErrPermanent, err))
		return f
	}
	return workflow.ExecuteLocalActivity(lctx, activity, copied.Elem().Interface())
}

// askInSlack posts the request's approval message to the tenant's Slack channel, or, once
// decided, updates it to show who decided and when. An erasure's message shows the block check
// run before anyone decides. Slack being down delays nobody: approving from the API or the CLI
// works all the same, and a message that cannot be posted is reported.
func (r *request) askInSlack(ctx workflow.Context, decided *slackmsg.Decision) {
	if decided == nil && r.in.Type == domain.TypeErasure {
		blocks, err := r.blockCheck(ctx)
		p := &slackmsg.Preflight{Blocked: len(blocks) > 0, Reasons: blockReasons(blocks)}
		if err != nil {
			p.Error = errorMessage(err)
		}
		r.preflight = p
	}
	var names []string
	for _, c := range r.in.Policy.Connectors {
		names = append(names, c.Name)
	}
	sctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 5 * time.Minute,
			MaximumAttempts: 20, NonRetryableErrorTypes: []string{activities.ErrPermanent}},
	})
	err := workflow.ExecuteActivity(sctx, a.PostApprovalMessage, activities.ApprovalMessage{
		RequestID: r.in.RequestID, TenantID: r.in.TenantID, Type: r.in.Type, DueDate: r.state.DueDate,
		Verified: r.verified, Method: r.method, Preflight: r.preflight, Connectors: names, Decision: decided,
	}).Get(ctx, nil)
	if err != nil {
		r.reportFailure(ctx, "PostApprovalMessage", err)
	}
}

// askInfo emails the subject staff's question and records that it was asked (the question in
// the request's timeline, its asker in the audit trail).
func (r *request) askInfo(ctx workflow.Context, d Decision) (domain.RequestState, error) {
	// An update handler's context does not inherit the main coroutine's options.
	ctx = workflow.WithActivityOptions(ctx, recordOptions)
	r.state.InformationRequests = append(r.state.InformationRequests, domain.InformationRequest{At: workflow.Now(ctx), Actor: d.Actor, Question: d.Reason})
	r.notify(ctx, "information_request", map[string]any{"Question": d.Reason})
	if err := r.record(ctx, r.state.Status, "request.information_requested", "", nil, d.Actor); err != nil {
		return r.state, err
	}
	return r.state, nil
}

// issueCode sends the subject a one-time code, by email or, to a subject known only by phone,
// by text (the activity chooses). A failure is recorded by the activity;
// the subject can ask for a new code from MyAccount or the host app.
func (r *request) issueCode(ctx workflow.Context) {
	n := activities.Notice{Key: r.in.RequestID + ":code", RequestID: r.in.RequestID, TenantID: r.in.TenantID, Kind: "verification_code"}
	if r.current {
		_ = r.step(ctx, codeOptions, a.IssueVerificationCode, n).Get(ctx, nil)
		return
	}
	_ = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, codeOptions), a.IssueVerificationCode, n).Get(ctx, nil)
}

var codeOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrPermanent}},
}

// resendCode sends the subject a new code because they asked for one, by the channel they
// asked for. The channel only travels in the activity's input, which replay does not compare,
// so histories recorded before it replay unchanged. The subject waits for
// the answer, so it is tried once: a failure goes back to them, and they can ask again.
func (r *request) resendCode(ctx workflow.Context, c CodeResend) (activities.CodeSent, error) {
	r.codes++
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var sent activities.CodeSent
	err := workflow.ExecuteActivity(actx, a.ResendVerificationCode, activities.CodeRequest{
		Key: r.in.RequestID + ":code:" + strconv.Itoa(r.codes), RequestID: r.in.RequestID, TenantID: r.in.TenantID, At: c.At,
		Channel: c.Channel,
	}).Get(ctx, &sent)
	return sent, err
}

// recordOptions are for the activities that record and report (PostgreSQL, Kafka, Mailgun). A
// failure no retry can cure is permanent and not retried at all. Anything else is retried once a
// minute for about a day of attempts: long enough to ride out an outage fixed the same day
// (deadlines count in days, reminders come days apart), short enough that a fault nobody fixed
// ends as a failure people see rather than a retry loop nobody does. Attempts, not
// ScheduleToClose, so that a day with no worker running does not use up the budget.
var recordOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, MaximumInterval: time.Minute, MaximumAttempts: 1440,
		NonRetryableErrorTypes: []string{activities.ErrPermanent},
	},
}

func withDefaults(p domain.Policy) domain.Policy {
	if p.TimeZone == "" {
		p.TimeZone = "UTC"
	}
	if p.Regime == "" {
		p.Regime = string(deadline.GDPR)
	}
	if p.BlockedErasure == "" {
		p.BlockedErasure = "wait"
	}
	if p.RecheckEvery <= 0 {
		p.RecheckEvery = 24 * time.Hour
	}
	if p.CloseBlockedBefore <= 0 {
		p.CloseBlockedBefore = 48 * time.Hour
	}
	if p.Reminders == nil {
		p.Reminders = deadline.DefaultReminders()
	}
	if p.IdentityTimeout <= 0 {
		p.IdentityTimeout = 14 * 24 * time.Hour
	}
	if p.RetryWindow <= 0 {
		p.RetryWindow = 30 * 24 * time.Hour
	}
	if p.ConnectorTimeout <= 0 {
		p.ConnectorTimeout = 24 * time.Hour
	}
	if p.ExportExpiry <= 0 {
		p.ExportExpiry = 30 * 24 * time.Hour
	}
	return p
}

func blockReasons(bs []connectors.Block) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Reason)
	}
	return out
}

func blockCodes(bs []connectors.Block) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Code)
	}
	sort.Strings(out)
	return out
}

// errorMessage is the innermost message of an activity failure, without Temporal's wrapping.
func errorMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "timed out (" + timeout.TimeoutType().String() + ")"
	}
	return err.Error()
}
