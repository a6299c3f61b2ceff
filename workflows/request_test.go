package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"
	"os"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/workflows"
)

// world stands in for everything outside the workflow: the connectors answering commands and
// the notices sent. The workflow under test is the real one; only time is skipped.
type world struct {
	env *testsuite.TestWorkflowEnvironment

	mu          sync.Mutex
	transitions []activities.Transition
	dispatched  []activities.Dispatch
	notices     []string
	sent        []activities.Notice // the notices with their data
	reminders   []activities.Reminder
	consents    []activities.ConsentChange
	forgotten   []string
	log         []string // every effect in order: "notice:completion", "forget", "dispatch:db:erase"
	expiries    []activities.ExportExpiryStart

	// answer decides a connector's result; nil output means success with an empty output.
	answer func(d activities.Dispatch, n int) (domain.Output, error)
	// failRecord, when set, decides whether recording a transition fails.
	failRecord func(tr activities.Transition) error
}

func newWorld(t *testing.T) *world {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))))
	w := &world{env: s.NewTestWorkflowEnvironment()}
	var a *activities.Activities
	w.env.RegisterWorkflow(workflows.RequestWorkflow)
	w.env.RegisterWorkflow(workflows.ExportExpiryWorkflow)
	w.env.RegisterActivity(a)
	w.env.OnActivity(a.RecordTransition, mock.Anything, mock.Anything).Return(func(_ context.Context, tr activities.Transition) error {
		if w.failRecord != nil {
			if err := w.failRecord(tr); err != nil {
				return err
			}
		}
		w.add(func() { w.transitions = append(w.transitions, tr); w.log = append(w.log, "status:"+tr.Status) })
		return nil
	})
	w.env.OnActivity(a.DispatchCommand, mock.Anything, mock.Anything).Return(func(_ context.Context, d activities.Dispatch) (domain.Output, error) {
		n := 0
		w.add(func() {
			for _, p := range w.dispatched {
				if p.Connector == d.Connector && p.Action == d.Action {
					n++
				}
			}
			w.dispatched = append(w.dispatched, d)
			w.log = append(w.log, "dispatch:"+d.Connector+":"+d.Action)
		})
		if w.answer != nil {
			return w.answer(d, n)
		}
		return domain.Output{}, nil
	})
	w.env.OnActivity(a.NotifySubject, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notice) error {
		w.add(func() {
			w.notices = append(w.notices, n.Kind)
			w.sent = append(w.sent, n)
			w.log = append(w.log, "notice:"+n.Kind)
		})
		return nil
	})
	w.env.OnActivity(a.IssueVerificationCode, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notice) error {
		w.add(func() { w.log = append(w.log, "code") })
		return nil
	})
	w.env.OnActivity(a.Remind, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.Reminder) error {
		w.add(func() { w.reminders = append(w.reminders, r) })
		return nil
	})
	w.env.OnActivity(a.RecordConsent, mock.Anything, mock.Anything).Return(func(_ context.Context, c activities.ConsentChange) error {
		w.add(func() { w.consents = append(w.consents, c); w.log = append(w.log, "consent") })
		return nil
	})
	w.env.OnActivity(a.ForgetSubject, mock.Anything, mock.Anything).Return(func(_ context.Context, id string) error {
		w.add(func() { w.forgotten = append(w.forgotten, id); w.log = append(w.log, "forget") })
		return nil
	})
	w.env.OnActivity(a.ExpireExport, mock.Anything, mock.Anything).Return(func(_ context.Context, e activities.ExportExpiry) error {
		w.add(func() { w.log = append(w.log, "expire-export") })
		return nil
	})
	w.env.OnActivity(a.StartExportExpiry, mock.Anything, mock.Anything).Return(func(_ context.Context, e activities.ExportExpiryStart) error {
		w.add(func() { w.expiries = append(w.expiries, e); w.log = append(w.log, "start-export-expiry") })
		return nil
	})
	w.env.OnActivity(a.BuildExport, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.ExportRequest) (activities.ExportPackage, error) {
		w.add(func() { w.log = append(w.log, fmt.Sprintf("export:%s:%d", r.Kind, len(r.Sources))) })
		return activities.ExportPackage{URI: "file:///x/" + r.RequestID + ".zip", SHA256: strings.Repeat("a", 64), Bytes: 10}, nil
	})
	return w
}

func (w *world) add(f func()) { w.mu.Lock(); defer w.mu.Unlock(); f() }

func (w *world) statuses() []string {
	var out []string
	for _, t := range w.transitions {
		if len(out) == 0 || out[len(out)-1] != t.Status {
			out = append(out, t.Status)
		}
	}
	return out
}

func (w *world) result(t *testing.T) domain.RequestState {
	t.Helper()
	require.True(t, w.env.IsWorkflowCompleted())
	require.NoError(t, w.env.GetWorkflowError())
	var st domain.RequestState
	require.NoError(t, w.env.GetWorkflowResult(&st))
	return st
}

// update sends a human decision at a given workflow time and fails the test if the validator
// rejects it (or accepts it when reject is set), or if an accepted update's handler fails or
// never completes.
func (w *world) update(t *testing.T, after time.Duration, name string, arg any, reject bool) {
	id := "u-" + name + after.String()
	completed := false
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				if !reject {
					t.Errorf("%s rejected: %v", name, err)
				}
			},
			OnAccept: func() {
				if reject {
					t.Errorf("%s accepted, want it rejected", name)
				}
			},
			OnComplete: func(_ any, err error) {
				completed = true
				if err != nil {
					t.Errorf("%s accepted but its handler failed: %v", name, err)
				}
			},
		}, arg)
	}, after)
	if !reject {
		t.Cleanup(func() {
			if !t.Failed() && !completed {
				t.Errorf("%s (%s) was accepted but never completed", name, id)
			}
		})
	}
}

var received = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC) // a Thursday

func input(typ string) workflows.RequestInput {
	return workflows.RequestInput{
		RequestID: "r1", TenantID: "salon", Type: typ,
		ReceivedAt: received, Channel: "api", IdentityVerified: true,
		Policy: domain.Policy{
			Regime: "gdpr", Country: "DE", TimeZone: "Europe/Berlin",
			Connectors: []domain.ConnectorRef{
				{Name: "database", Capabilities: []string{"access", "erase", "rectify", "restrict", "block_check"}},
				{Name: "newsletter", Capabilities: []string{"access", "erase", "restrict"}},
			},
			ExportBase: "file:///exports",
		},
	}
}

func TestAccessCollectsFromEveryConnectorAndBuildsExport(t *testing.T) {
	w := newWorld(t)
	w.env.SetStartTime(received)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeAccess))
	st := w.result(t)

	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Equal(t, "2026-02-16", st.DueDate, "15 Jan + 1 month = Sun 15 Feb, moved to Monday")
	require.Equal(t, []string{"received", "in_progress", "completed"}, w.statuses())
	require.ElementsMatch(t, []string{"dispatch:database:access", "dispatch:newsletter:access"}, w.dispatchLog())
	for _, d := range w.dispatched {
		require.Equal(t, "file:///exports/salon/r1", d.ExportLocation)
		require.Equal(t, "r1:"+d.Connector+":access", d.IdempotencyKey)
	}
	require.NotNil(t, st.Export)
	require.Equal(t, []string{"acknowledgement", "export_ready", "completion"}, w.notices)
	require.Contains(t, w.log, "export:access:2")
	require.Empty(t, w.forgotten, "only erasure forgets the subject")
}

func (w *world) dispatchLog() []string {
	var out []string
	for _, l := range w.log {
		if strings.HasPrefix(l, "dispatch:") {
			out = append(out, l)
		}
	}
	return out
}

func TestIdentityVerificationThenManualApproval(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeRestriction)
	in.IdentityVerified = false
	in.Policy.ManualApproval = true
	w.update(t, time.Hour, workflows.UpdateApprove, workflows.Decision{Actor: "sam"}, true) // not yet verified
	w.update(t, 2*time.Hour, workflows.UpdateVerifyIdentity, workflows.Verification{Method: "carrier-pigeon"}, true)
	w.update(t, 3*time.Hour, workflows.UpdateVerifyIdentity, workflows.Verification{Method: "email_code"}, false)
	w.update(t, 4*time.Hour, workflows.UpdateVerifyIdentity, workflows.Verification{Method: "email_code"}, true) // twice
	w.update(t, 5*time.Hour, workflows.UpdateApprove, workflows.Decision{}, true)                                // no actor
	w.update(t, 6*time.Hour, workflows.UpdateApprove, workflows.Decision{Actor: "sam"}, false)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)

	require.Equal(t, []string{"received", "identity_pending", "pending_approval", "in_progress", "completed"}, w.statuses())
	require.Equal(t, "sam", st.ApprovedBy)
	require.NotNil(t, st.IdentityVerifiedAt)
	require.ElementsMatch(t, []string{"dispatch:database:restrict", "dispatch:newsletter:restrict"}, w.dispatchLog())
	var approvedBy string
	for _, tr := range w.transitions {
		if tr.Status == domain.StatusInProgress {
			approvedBy = tr.Actor
		}
	}
	require.Equal(t, "sam", approvedBy, "the approver is the actor of the transition it caused")
}

func TestIdentityNeverVerifiedExpires(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeAccess)
	in.IdentityVerified = false
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)
	require.Equal(t, domain.StatusCanceled, st.Status)
	require.Equal(t, []string{"identity_expired"}, w.notices)
	require.Equal(t, []string{"code"}, filter(w.log, "code"), "one code sent on entering identity_pending")
	require.Empty(t, w.dispatched, "no data leaves before identity is verified")
	last := w.transitions[len(w.transitions)-1]
	require.Equal(t, "request.identity_expired", last.Action)
}

func TestClockStartsAtVerificationWhenTenantSaysSo(t *testing.T) {
	w := newWorld(t)
	w.env.SetStartTime(received)
	in := input(domain.TypeAccess)
	in.IdentityVerified = false
	in.Policy.ClockStart = "verification"
	w.update(t, 10*24*time.Hour, workflows.UpdateVerifyIdentity, workflows.Verification{Method: "email_code"}, false)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)
	require.Equal(t, "2026-02-25", st.DueDate, "verified 25 Jan: due 25 Feb")
}

func TestDenialNeedsReasonAndTellsSubject(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeErasure)
	in.Policy.ManualApproval = true
	w.update(t, time.Hour, workflows.UpdateDeny, workflows.Decision{Actor: "sam"}, true)
	w.update(t, 2*time.Hour, workflows.UpdateDeny, workflows.Decision{Actor: "sam", Reason: "manifestly unfounded: repetitive"}, false)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)
	require.Equal(t, domain.StatusDenied, st.Status)
	require.Equal(t, "manifestly unfounded: repetitive", st.DenialReason)
	require.Equal(t, []string{"acknowledgement", "denial"}, w.notices)
	require.Empty(t, w.dispatched)
}

func blocked(code, reason string) domain.Output {
	return domain.Output{Blocks: []connectors.Block{{Code: code, Reason: reason}}}
}

func TestErasureWaitsWhileBlockedThenCompletes(t *testing.T) {
	w := newWorld(t)
	w.env.SetStartTime(received)
	// The booking is in three days' time: blocked on the first checks, clear after.
	w.answer = func(d activities.Dispatch, n int) (domain.Output, error) {
		if d.Action == "block_check" && n < 3 {
			return blocked("active_booking", "You have a booking on 18 January."), nil
		}
		return domain.Output{}, nil
	}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeErasure))
	st := w.result(t)

	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Equal(t, []string{"received", "blocked", "in_progress", "completed"}, w.statuses())
	var checks []activities.Dispatch
	for _, d := range w.dispatched {
		if d.Action == "block_check" {
			checks = append(checks, d)
		}
	}
	require.Len(t, checks, 4, "checked on receipt, then daily until clear")
	require.NotEqual(t, checks[0].IdempotencyKey, checks[1].IdempotencyKey, "each re-check is a new question")
	require.Equal(t, []string{"acknowledgement", "blocked", "completion"}, w.notices, "the subject is told once per distinct reason")
	// Erasure only after clear; the completion email before Lethe forgets the address.
	last := tail(w.log, 5)
	require.ElementsMatch(t, []string{"dispatch:database:erase", "dispatch:newsletter:erase"}, last[:2])
	require.Equal(t, []string{"notice:completion", "forget", "status:completed"}, last[2:])
}

func tail(s []string, n int) []string { return s[len(s)-n:] }

func TestErasureBlockedClosesByPolicy(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeErasure)
	in.Policy.BlockedErasure = "close"
	w.answer = func(d activities.Dispatch, _ int) (domain.Output, error) {
		if d.Action == "block_check" {
			return blocked("outstanding_balance", "An invoice of 45.00 EUR is unpaid."), nil
		}
		return domain.Output{}, nil
	}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)
	require.Equal(t, domain.StatusDenied, st.Status)
	require.Contains(t, st.DenialReason, "An invoice of 45.00 EUR is unpaid.")
	require.Equal(t, "outstanding_balance", st.Blocks[0].Code)
	// One notice: closed, with the reasons. "We will erase once nothing stands in the way"
	// would promise what will not happen.
	require.Equal(t, []string{"acknowledgement", "blocked_closed"}, w.notices)
	require.Equal(t, []any{"An invoice of 45.00 EUR is unpaid."}, anyList(w.closingNotice(t).Data["Reasons"]))
	for _, d := range w.dispatched {
		require.NotEqual(t, "erase", d.Action, "nothing is erased while blocked")
	}
	require.Empty(t, w.forgotten)
}

func TestErasureStillBlockedNearDeadlineIsClosedInTime(t *testing.T) {
	w := newWorld(t)
	w.env.SetStartTime(received)
	w.answer = func(d activities.Dispatch, _ int) (domain.Output, error) {
		if d.Action == "block_check" {
			return blocked("active_booking", "You have a booking in March."), nil
		}
		return domain.Output{}, nil
	}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeErasure))
	st := w.result(t)
	require.Equal(t, domain.StatusDenied, st.Status)
	closedAt := w.transitions[len(w.transitions)-1].At
	due := time.Date(2026, 2, 16, 0, 0, 0, 0, mustLoc("Europe/Berlin"))
	require.True(t, closedAt.Before(due), "closed at %v, before the due date %v", closedAt, due)
	require.True(t, closedAt.After(due.Add(-72*time.Hour)), "closed at %v, not long before the deadline", closedAt)
}

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func TestPartialFailureThenStaffRetriesOnlyTheFailed(t *testing.T) {
	w := newWorld(t)
	w.answer = func(d activities.Dispatch, n int) (domain.Output, error) {
		if d.Connector == "newsletter" && d.Action == "erase" && n == 0 {
			return domain.Output{}, temporal.NewNonRetryableApplicationError("list API refused the key", activities.ErrPermanent, nil)
		}
		return domain.Output{}, nil
	}
	// Retry is only valid once the request has failed.
	w.update(t, time.Minute, workflows.UpdateRetry, workflows.Decision{Actor: "sam"}, false)
	w.update(t, 2*time.Minute, workflows.UpdateRetry, workflows.Decision{Actor: "sam"}, true)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeErasure))
	st := w.result(t)

	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Equal(t, []string{"received", "in_progress", "failed", "in_progress", "completed"}, w.statuses())
	var failed activities.Transition
	for _, tr := range w.transitions {
		if tr.Status == domain.StatusFailed {
			failed = tr
		}
	}
	require.Contains(t, failed.Detail["error"], "newsletter erase: list API refused the key")
	require.Equal(t, []any{"newsletter erase"}, failed.Detail["failed"])
	erases := map[string]int{}
	for _, d := range w.dispatched {
		if d.Action == "erase" {
			erases[d.Connector]++
		}
	}
	require.Equal(t, map[string]int{"database": 1, "newsletter": 2}, erases, "the retry reaches only the failed connector")
	require.Equal(t, []string{"forget"}, filter(w.log, "forget"), "forgotten once, after everything succeeded")
}

func filter(s []string, v string) []string {
	var out []string
	for _, x := range s {
		if x == v {
			out = append(out, x)
		}
	}
	return out
}

func TestFailedRequestNobodyRetriesStaysFailed(t *testing.T) {
	w := newWorld(t)
	w.answer = func(d activities.Dispatch, n int) (domain.Output, error) {
		if d.Connector == "database" {
			return domain.Output{}, temporal.NewNonRetryableApplicationError("table missing", activities.ErrPermanent, nil)
		}
		return domain.Output{}, nil
	}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeRestriction))
	require.True(t, w.env.IsWorkflowCompleted())
	err := w.env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "database restrict: table missing")
	require.Equal(t, domain.StatusFailed, w.transitions[len(w.transitions)-1].Status)
	require.NotContains(t, w.notices, "completion", "nothing is reported complete that is not")
}

func TestRectificationReachesConnectorsThatRectify(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeRectification)
	in.ChangedFields = []string{"last_name", "phone"}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)
	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Equal(t, []string{"dispatch:database:rectify"}, w.dispatchLog(), "only connectors that can rectify")
	require.Equal(t, "r1:database:rectify", w.dispatched[0].IdempotencyKey)
	var rectified *activities.Transition
	for i := range w.transitions {
		if w.transitions[i].Action == "request.rectified" {
			rectified = &w.transitions[i]
		}
	}
	require.NotNil(t, rectified, "recipients are told of the correction (Art. 19)")
	require.Equal(t, []any{"last_name", "phone"}, rectified.Detail["fields"])
}

func TestObjectionRecordsConsentThenStopsMarketing(t *testing.T) {
	w := newWorld(t)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeObjection))
	st := w.result(t)
	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Len(t, w.consents, 1)
	require.False(t, w.consents[0].Granted)
	require.Equal(t, "marketing", w.consents[0].Purpose)
	require.Equal(t, "consent", firstOf(w.log, "consent", "dispatch:database:restrict"))
	for _, d := range w.dispatched {
		require.Equal(t, "marketing", d.Params["purpose"])
	}
}

func firstOf(log []string, a, b string) string {
	for _, l := range log {
		if l == a || l == b {
			return l
		}
	}
	return ""
}

func TestRemindersAndOverdueEscalationFollowExtension(t *testing.T) {
	w := newWorld(t)
	w.env.SetStartTime(received)
	in := input(domain.TypeAccess)
	in.Policy.ManualApproval = true
	// Nobody approves for a long time; the request is extended after 26 days (10 Feb), after
	// the first reminder and before the first due date.
	w.update(t, 26*24*time.Hour, workflows.UpdateExtend, workflows.Decision{Actor: "dpo"}, true) // no reason
	w.update(t, 26*24*time.Hour+time.Minute, workflows.UpdateExtend, workflows.Decision{Actor: "dpo", Reason: "complex: many systems"}, false)
	w.update(t, 27*24*time.Hour, workflows.UpdateExtend, workflows.Decision{Actor: "dpo", Reason: "again"}, true)
	w.update(t, 100*24*time.Hour, workflows.UpdateApprove, workflows.Decision{Actor: "sam"}, false)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)

	require.True(t, st.Extended)
	require.Equal(t, "2026-04-15", st.DueDate, "15 Feb + 2 months = Wed 15 Apr")
	var got []string
	for _, r := range w.reminders {
		got = append(got, r.Kind+"@"+r.At.In(mustLoc("Europe/Berlin")).Format("2006-01-02")+" due "+r.DueDate)
	}
	require.Equal(t, []string{
		"reminder@2026-02-09 due 2026-02-16", // 7 days before the first due date
		"reminder@2026-04-08 due 2026-04-15", // after the extension, the new due date's reminders
		"reminder@2026-04-13 due 2026-04-15",
		"overdue@2026-04-16 due 2026-04-15", // escalated once, the day after
	}, got)
	require.Contains(t, w.notices, "extension")
}

func TestCancelBeforeWorkStarts(t *testing.T) {
	w := newWorld(t)
	in := input(domain.TypeErasure)
	in.Policy.ManualApproval = true
	w.update(t, time.Hour, workflows.UpdateCancel, workflows.Decision{Actor: "subject"}, true) // no reason
	w.update(t, 2*time.Hour, workflows.UpdateCancel, workflows.Decision{Actor: "subject", Reason: "withdrawn by the subject"}, false)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)
	require.Equal(t, domain.StatusCanceled, st.Status)
	require.Empty(t, w.dispatched)
}

func TestTransientConnectorFailureIsRetriedByTemporal(t *testing.T) {
	w := newWorld(t)
	w.answer = func(d activities.Dispatch, n int) (domain.Output, error) {
		if d.Connector == "database" && n < 2 {
			return domain.Output{}, errors.New("connection reset")
		}
		return domain.Output{}, nil
	}
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypeRestriction))
	st := w.result(t)
	require.Equal(t, domain.StatusCompleted, st.Status)
	n := 0
	for _, d := range w.dispatched {
		if d.Connector == "database" {
			n++
			require.Equal(t, "r1:database:restrict", d.IdempotencyKey, "every retry carries the same key")
		}
	}
	require.Equal(t, 3, n)
}

func TestPortabilityBuildsAMachineReadableExport(t *testing.T) {
	w := newWorld(t)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, input(domain.TypePortability))
	st := w.result(t)
	require.Equal(t, domain.StatusCompleted, st.Status)
	require.ElementsMatch(t, []string{"dispatch:database:access", "dispatch:newsletter:access"}, w.dispatchLog())
	require.Contains(t, w.log, "export:portability:2", "the package is built as a portability export")
	require.Equal(t, []string{"acknowledgement", "export_ready", "completion"}, w.notices)
}
