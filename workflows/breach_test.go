package workflows_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// breachWorld runs the breach workflow with time skipped, recording what it asks the register
// and the reminders to do.
type breachWorld struct {
	env    *testsuite.TestWorkflowEnvironment
	start  time.Time
	mu     sync.Mutex
	steps  []activities.BreachStep
	alarms []activities.BreachAlarm
}

func newBreachWorld(t *testing.T, start time.Time) *breachWorld {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))))
	w := &breachWorld{env: s.NewTestWorkflowEnvironment(), start: start}
	w.env.SetStartTime(start)
	var a *activities.Activities
	w.env.RegisterWorkflow(workflows.BreachWorkflow)
	w.env.RegisterActivity(a)
	w.env.OnActivity(a.RecordBreach, mock.Anything, mock.Anything).Return(func(_ context.Context, s activities.BreachStep) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.steps = append(w.steps, s)
		return nil
	})
	w.env.OnActivity(a.RemindBreach, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.BreachAlarm) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.alarms = append(w.alarms, r)
		return nil
	})
	return w
}

// at runs f when the workflow's clock reads t.
func (w *breachWorld) at(t time.Time, f func()) { w.env.RegisterDelayedCallback(f, t.Sub(w.start)) }

// update sends an entry at time when; refusal, when given, is what the validator's refusal
// must say. Every entry must be answered.
func (w *breachWorld) update(t *testing.T, when time.Time, name string, arg any, refusal string) {
	answered := false
	w.at(when, func() {
		w.env.UpdateWorkflow(name, name+when.String(), &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				answered = true
				if refusal == "" {
					t.Errorf("%s at %s rejected: %v", name, when, err)
				} else {
					assert.ErrorContains(t, err, refusal, name)
				}
			},
			OnAccept: func() {
				if refusal != "" {
					t.Errorf("%s at %s accepted, want it refused with %q", name, when, refusal)
				}
			},
			OnComplete: func(_ any, err error) { answered = true; assert.NoError(t, err, name) },
		}, arg)
	})
	t.Cleanup(func() {
		if !answered && !t.Failed() {
			t.Errorf("%s at %s was never answered", name, when)
		}
	})
}

func (w *breachWorld) query(t *testing.T) workflows.BreachState {
	t.Helper()
	v, err := w.env.QueryWorkflow(workflows.QueryBreach)
	require.NoError(t, err)
	var st workflows.BreachState
	require.NoError(t, v.Get(&st))
	return st
}

func (w *breachWorld) result(t *testing.T) workflows.BreachState {
	t.Helper()
	require.True(t, w.env.IsWorkflowCompleted())
	require.NoError(t, w.env.GetWorkflowError())
	var st workflows.BreachState
	require.NoError(t, w.env.GetWorkflowResult(&st))
	return st
}

// alarmTimes lists rule/kind@time of every alarm sent, in order.
func (w *breachWorld) alarmTimes(rule string) []string {
	var out []string
	for _, a := range w.alarms {
		if a.Rule == rule {
			out = append(out, a.Kind+"@"+a.At.UTC().Format(time.RFC3339))
		}
	}
	return out
}

func (w *breachWorld) actions() []string {
	var out []string
	for _, s := range w.steps {
		out = append(out, s.Action)
	}
	return out
}

func clockOf(st workflows.BreachState, rule string) workflows.BreachClock {
	for _, c := range st.Clocks {
		if c.Rule == rule {
			return c
		}
	}
	return workflows.BreachClock{}
}

var breachAware = time.Date(2026, 3, 6, 16, 0, 0, 0, time.UTC) // a Friday

func breachInput(establishment string, aware time.Time) workflows.BreachInput {
	return workflows.BreachInput{BreachID: "b1", TenantID: "salon", Title: "Lost laptop", AwareAt: aware,
		Facts: workflows.BreachFacts{Establishment: establishment}, OpenedBy: "dpo@salon"}
}

func hoursAfter(t time.Time, h ...int) []string {
	var out []string
	for _, x := range h {
		out = append(out, t.Add(time.Duration(x)*time.Hour).Format(time.RFC3339))
	}
	return out
}

// GDPR Art. 33: opened an hour after awareness, nobody notifies the authority. Staff are
// reminded at 24, 48, 60 and 70 hours after awareness, the DPO is alerted at 72; a late
// notification is refused without the reasons for the delay and recorded with them.
func TestBreach72HourClockRemindsEscalatesAndNeedsReasonsWhenLate(t *testing.T) {
	w := newBreachWorld(t, breachAware.Add(time.Hour))
	rule := "gdpr-art33-authority"
	var mid workflows.BreachState
	w.at(breachAware.Add(30*time.Hour), func() { mid = w.query(t) })
	late := breachAware.Add(75 * time.Hour)
	w.update(t, late, workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: rule, Actor: "dpo@salon"}, "give the reasons for the delay")
	w.update(t, late.Add(time.Minute), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: rule, Actor: "dpo@salon",
		Reference: "BfDI-2026-118", LateReasons: "the processor reported the breach on day 3"}, "")
	w.update(t, late.Add(2*time.Minute), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "measures complete"}, "")
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, breachInput("DE", breachAware))
	st := w.result(t)

	var want []string
	for i, at := range hoursAfter(breachAware, 24, 48, 60, 70, 72) {
		want = append(want, map[bool]string{true: "escalation", false: "reminder"}[i == 4]+"@"+at)
	}
	assert.Equal(t, want, w.alarmTimes(rule))

	c := clockOf(mid, rule)
	assert.Equal(t, workflows.ClockRunning, c.Status)
	require.NotNil(t, c.RemainingSeconds)
	assert.Equal(t, int64(42*3600), *c.RemainingSeconds, "42 hours left at hour 30")
	assert.Equal(t, workflows.ClockDocumented, clockOf(mid, "gdpr-art33-register").Status)

	c = clockOf(st, rule)
	assert.Equal(t, workflows.ClockNotifiedLate, c.Status)
	require.NotNil(t, c.Notification)
	assert.True(t, c.Notification.Late)
	assert.Equal(t, "the processor reported the breach on day 3", c.Notification.LateReasons)
	assert.Equal(t, workflows.BreachClosed, st.Status)
	assert.Equal(t, []string{"breach.opened", "breach.notification_recorded", "breach.closed"}, w.actions())
	n := w.steps[1].Notification
	require.NotNil(t, n)
	assert.True(t, n.Late)
	assert.Equal(t, "BfDI-2026-118", n.Reference)
}

// A tenant's own reminder schedule replaces the default 24, 48, 60 and 70 hours.
func TestBreachTenantReminderSchedule(t *testing.T) {
	w := newBreachWorld(t, breachAware)
	rule := "gdpr-art33-authority"
	w.update(t, breachAware.Add(73*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: rule, Actor: "dpo@salon",
		LateReasons: "the processor reported the breach on day 3"}, "")
	w.update(t, breachAware.Add(74*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "done"}, "")
	in := breachInput("DE", breachAware)
	in.Facts.Reminders = &breachclock.Reminders{Of: 72, At: []int{6, 66}}
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, in)
	w.result(t)
	want := []string{"reminder@" + hoursAfter(breachAware, 6)[0], "reminder@" + hoursAfter(breachAware, 66)[0], "escalation@" + hoursAfter(breachAware, 72)[0]}
	assert.Equal(t, want, w.alarmTimes(rule))
}

// Notified in time: the clock stops, with no further reminder and no escalation, and closing
// is refused while another clock still runs.
func TestBreachNotifiedInTimeStopsItsClock(t *testing.T) {
	w := newBreachWorld(t, breachAware)
	rule := "gdpr-art33-authority"
	in := breachInput("DE", breachAware)
	in.Facts.NIS2 = true
	w.update(t, breachAware.Add(20*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "done"}, "nis2-early-warning")
	w.update(t, breachAware.Add(22*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "nis2-early-warning", Actor: "ciso@salon"}, "")
	w.update(t, breachAware.Add(50*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: rule, Actor: "dpo@salon",
		NotifiedAt: breachAware.Add(49 * time.Hour)}, "")
	w.update(t, breachAware.Add(51*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "done"}, "nis2-notification")
	w.update(t, breachAware.Add(52*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "nis2-notification", Actor: "ciso@salon"}, "")
	// The final report's month starts at that notification; it is filed, then the breach closes.
	w.update(t, breachAware.Add(60*24*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "nis2-final-report", Actor: "ciso@salon",
		LateReasons: "the forensic report came late"}, "")
	w.update(t, breachAware.Add(60*24*time.Hour+time.Minute), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "done"}, "")
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, in)
	st := w.result(t)

	assert.Equal(t, []string{"reminder@" + hoursAfter(breachAware, 24)[0], "reminder@" + hoursAfter(breachAware, 48)[0]}, w.alarmTimes(rule))
	c := clockOf(st, rule)
	assert.Equal(t, workflows.ClockNotified, c.Status)
	assert.False(t, c.Notification.Late)
	assert.Equal(t, breachAware.Add(49*time.Hour), c.Notification.NotifiedAt.UTC())
	assert.Equal(t, []string{"reminder@" + breachAware.Add(8*time.Hour).Format(time.RFC3339), "reminder@" + breachAware.Add(16*time.Hour).Format(time.RFC3339),
		"reminder@" + breachAware.Add(20*time.Hour).Format(time.RFC3339)}, w.alarmTimes("nis2-early-warning"),
		"a 24-hour clock reminds at 8, 16, 20 (and 23h20) hours")
	final := clockOf(st, "nis2-final-report")
	assert.Equal(t, workflows.ClockNotifiedLate, final.Status)
	assert.Equal(t, "2026-04-09T00:00:00+02:00", final.Due.Format(time.RFC3339), "one month after the notification at hour 52 (8 March)")
}

// A breach assessed as unlikely to result in a risk is not notified, and stays in the register
// (Art. 33(5)): its authority clock is withdrawn before any reminder, the register obligation
// remains documented, and the breach can be closed.
func TestNonNotifiableBreachStaysInTheRegister(t *testing.T) {
	w := newBreachWorld(t, breachAware)
	w.update(t, breachAware.Add(2*time.Hour), workflows.UpdateBreachAssessment, workflows.BreachAssessment{Risk: "none", Actor: "dpo@salon"}, "rationale")
	w.update(t, breachAware.Add(3*time.Hour), workflows.UpdateBreachAssessment, workflows.BreachAssessment{Risk: "low", Rationale: "x", Actor: "dpo@salon"}, "unknown risk")
	w.update(t, breachAware.Add(4*time.Hour), workflows.UpdateBreachAssessment, workflows.BreachAssessment{Risk: "none",
		Rationale: "the disk was encrypted and the key was not on it", Actor: "dpo@salon"}, "")
	w.update(t, breachAware.Add(5*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "gdpr-art33-authority", Actor: "dpo@salon"}, "withdrawn")
	w.update(t, breachAware.Add(6*time.Hour), workflows.UpdateBreachContent, workflows.BreachContent{Art33: store.Art33{Nature: "A laptop was stolen", Measures: "Remote wipe"}, Actor: "dpo@salon"}, "")
	w.update(t, breachAware.Add(7*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "not notifiable"}, "")
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, breachInput("DE", breachAware))
	st := w.result(t)

	assert.Empty(t, w.alarms)
	assert.Equal(t, workflows.ClockWithdrawn, clockOf(st, "gdpr-art33-authority").Status)
	assert.Equal(t, workflows.ClockDocumented, clockOf(st, "gdpr-art33-register").Status)
	assert.Equal(t, "none", st.Risk)
	assert.Equal(t, 1, st.ContentVersion)
	assert.Contains(t, st.Missing, "likely consequences (33(3)(c))")
	assert.NotContains(t, st.Missing, "nature of the breach (33(3)(a))")
	assert.Equal(t, []string{"breach.opened", "breach.assessed", "breach.content_updated", "breach.closed"}, w.actions())
	last := w.steps[len(w.steps)-1]
	statuses := map[string]string{}
	for _, c := range last.Clocks {
		statuses[c.RuleID] = c.Status
	}
	assert.Equal(t, map[string]string{"gdpr-art33-authority": "withdrawn", "gdpr-art33-register": "documented"}, statuses)
	for _, s := range w.steps {
		for k, v := range s.Detail {
			assert.NotContains(t, strings.ToLower(fmt.Sprint(v)), "laptop", "audit detail %s holds content text", k)
		}
	}
}

// LGPD: the ANPD and the people must hear within 3 business days; aware on Thursday
// 19 November 2026, the clock runs over Black Consciousness Day (Friday) and the weekend to the
// end of Wednesday 25 November in Brasília. A high risk finding adds nothing here; the
// notification to the ANPD starts the 20-business-day supplement.
func TestBreachLGPDAcrossABrazilianHoliday(t *testing.T) {
	aware := time.Date(2026, 11, 19, 18, 0, 0, 0, time.UTC) // 15:00 in Brasília
	due := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)    // midnight after Wednesday 25th
	w := newBreachWorld(t, aware.Add(30*time.Minute))
	var first workflows.BreachState
	w.at(aware.Add(time.Hour), func() { first = w.query(t) })
	w.update(t, due.Add(time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "lgpd-subjects", Actor: "dpo@salon"}, "after its limit (2026-11-26T03:00:00Z)")
	w.update(t, due.Add(-time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "lgpd-anpd", Actor: "dpo@salon",
		NotifiedAt: due.Add(-2 * time.Hour)}, "")
	var after workflows.BreachState
	w.at(due.Add(3*time.Hour), func() { after = w.query(t) })
	w.update(t, due.Add(4*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "lgpd-subjects", Actor: "dpo@salon",
		LateReasons: "the address list came from the processor on day 5"}, "")
	w.update(t, due.Add(30*24*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "lgpd-anpd-supplement", Actor: "dpo@salon",
		LateReasons: "waiting for the forensic report"}, "")
	w.update(t, due.Add(30*24*time.Hour+time.Minute), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "done"}, "")
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, breachInput("BR", aware))
	st := w.result(t)

	anpd := clockOf(first, "lgpd-anpd")
	assert.True(t, due.Equal(anpd.Due), "due %s", anpd.Due)
	assert.Contains(t, anpd.Skipped, "Fri 2026-11-20 public holiday (Dia Nacional de Zumbi e da Consciência Negra)")
	require.NotNil(t, anpd.RemainingSeconds)
	assert.Equal(t, int64(due.Sub(aware.Add(time.Hour))/time.Second), *anpd.RemainingSeconds)
	assert.Equal(t, workflows.ClockWaiting, clockOf(first, "lgpd-anpd-supplement").Status)

	span := due.Sub(aware)
	var want []string
	for _, h := range []int64{24, 48, 60, 70} {
		want = append(want, "reminder@"+aware.Add(time.Duration(int64(span)*h/72).Truncate(time.Second)).Format(time.RFC3339))
	}
	assert.Equal(t, want, w.alarmTimes("lgpd-anpd"), "no escalation: notified two hours before the limit")
	assert.Equal(t, append(want, "escalation@"+due.Format(time.RFC3339)), w.alarmTimes("lgpd-subjects"))

	sup := clockOf(after, "lgpd-anpd-supplement")
	assert.Equal(t, workflows.ClockRunning, sup.Status)
	assert.Equal(t, "2026-12-24T00:00:00-03:00", sup.Due.Format(time.RFC3339), "20 business days from Wednesday 25 November")
	assert.Equal(t, workflows.ClockNotified, clockOf(st, "lgpd-anpd").Status)
	assert.Equal(t, workflows.ClockNotifiedLate, clockOf(st, "lgpd-subjects").Status)
}

// SEC Form 8-K Item 1.05: four business days from the materiality determination, not from
// awareness. Determined on Wednesday 25 November 2026, the clock passes Thanksgiving and the
// weekend and ends with Wednesday 2 December in New York; the escalation comes then.
func TestBreachSECAcrossAFederalHolidayAndAWeekend(t *testing.T) {
	aware := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	determined := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	due := time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC) // midnight in New York after 2 December
	w := newBreachWorld(t, aware)
	in := breachInput("US-DE", aware)
	in.Facts.Listed = true
	var before, after workflows.BreachState
	w.at(determined.Add(-time.Hour), func() { before = w.query(t) })
	w.update(t, determined, workflows.UpdateBreachMateriality, workflows.BreachMateriality{Actor: "cfo@salon"}, "")
	w.update(t, determined.Add(time.Minute), workflows.UpdateBreachMateriality, workflows.BreachMateriality{Actor: "cfo@salon"}, "already recorded")
	w.at(determined.Add(time.Hour), func() { after = w.query(t) })
	w.update(t, due.Add(6*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "sec-8k-item-105", Actor: "cfo@salon",
		Reference: "0001193125-26-000001", LateReasons: "EDGAR filing agent outage"}, "")
	w.update(t, due.Add(7*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "filed"}, "")
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, in)
	w.result(t)

	c := clockOf(before, "sec-8k-item-105")
	assert.Equal(t, workflows.ClockWaiting, c.Status)
	assert.Equal(t, "the materiality determination", c.Waiting)
	c = clockOf(after, "sec-8k-item-105")
	assert.Equal(t, workflows.ClockRunning, c.Status)
	assert.True(t, due.Equal(c.Due), "due %s", c.Due)
	assert.Equal(t, []string{"Thu 2026-11-26 public holiday (Thanksgiving Day)", "Sat 2026-11-28 Saturday", "Sun 2026-11-29 Sunday"}, c.Skipped)
	got := w.alarmTimes("sec-8k-item-105")
	require.Len(t, got, 5)
	assert.Equal(t, "escalation@"+due.Format(time.RFC3339), got[4])

	unlisted := newBreachWorld(t, aware)
	unlisted.update(t, aware.Add(time.Hour), workflows.UpdateBreachMateriality, workflows.BreachMateriality{Actor: "cfo@salon"}, "not a listed company")
	unlisted.update(t, aware.Add(2*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "x"}, "")
	unlisted.env.ExecuteWorkflow(workflows.BreachWorkflow, breachInput("US-DE", aware))
	unlisted.result(t)
}

// The first content may come with the opening; the affected counts, when they firm up, start
// the clocks they cross the threshold of.
func TestBreachCountsThatFirmUpStartNewClocks(t *testing.T) {
	w := newBreachWorld(t, breachAware)
	in := breachInput("US-NV", breachAware)
	in.Facts.Affected = []breachclock.Residents{{Jurisdiction: "US-TX", Count: 100}}
	n := int64(100)
	in.Content = &workflows.BreachContent{Art33: store.Art33{Nature: "Exposed bucket", SubjectsApprox: &n}}
	var first workflows.BreachState
	w.at(breachAware.Add(time.Hour), func() { first = w.query(t) })
	w.update(t, breachAware.Add(2*time.Hour), workflows.UpdateBreachContent, workflows.BreachContent{Actor: "dpo@salon",
		Affected: []breachclock.Residents{{Jurisdiction: "US-TX", Count: 300}}}, "")
	w.update(t, breachAware.Add(3*time.Hour), workflows.UpdateBreachContent, workflows.BreachContent{Actor: "dpo@salon",
		Affected: []breachclock.Residents{{Jurisdiction: "", Count: 3}}}, "need a jurisdiction")
	for i, rule := range []string{"tx-residents", "tx-attorney-general"} {
		w.update(t, breachAware.Add(time.Duration(4+i)*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: rule, Actor: "dpo@salon"}, "")
	}
	w.update(t, breachAware.Add(6*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "done"}, "")
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, in)
	st := w.result(t)

	assert.Len(t, first.Clocks, 1)
	assert.Equal(t, 1, first.ContentVersion)
	assert.Equal(t, workflows.ClockNotified, clockOf(st, "tx-attorney-general").Status)
	assert.Equal(t, 2, st.ContentVersion)
	assert.Equal(t, "Exposed bucket", st.Content.Nature, "a phase keeps what the previous version said")
	require.NotNil(t, w.steps[0].Content)
	assert.Equal(t, "dpo@salon", w.steps[0].Content.RecordedBy)
}

// GDPR Art. 34(3): once the risk is found high, the people need not be told individually when
// the data was encrypted, the risk was neutralised or telling each would be disproportionate (then
// a public communication). The ground needs its rationale, is refused for a clock whose rule
// allows none (the authority's), and closes the subjects' clock without further reminders.
func TestBreachSubjectsExemptionUnderArt34(t *testing.T) {
	w := newBreachWorld(t, breachAware)
	subjects := "gdpr-art34-subjects"
	high := breachAware.Add(2 * time.Hour)
	w.update(t, high, workflows.UpdateBreachAssessment, workflows.BreachAssessment{Risk: "high", Rationale: "health notes", Actor: "dpo@salon"}, "")
	w.update(t, high.Add(time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "gdpr-art33-authority",
		Exemption: breachclock.Encrypted, Rationale: "encrypted", Actor: "dpo@salon"}, "gdpr-art33-authority allows no exemption")
	w.update(t, high.Add(2*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: subjects,
		Exemption: breachclock.Encrypted, Actor: "dpo@salon"}, "needs its rationale")
	w.update(t, high.Add(3*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: subjects,
		Exemption: breachclock.Disproportionate, Rationale: "40,000 people, no addresses", Actor: "dpo@salon"}, "name it in the reference")
	w.update(t, high.Add(4*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: subjects,
		Exemption: "forgotten", Rationale: "x", Actor: "dpo@salon"}, `"forgotten" is not an exemption under gdpr-art34-subjects`)
	w.update(t, high.Add(5*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: subjects,
		Exemption: breachclock.Encrypted, Rationale: "AES-256 at rest; the key was not on the laptop", Actor: "dpo@salon"}, "")
	w.update(t, breachAware.Add(30*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "gdpr-art33-authority", Actor: "dpo@salon"}, "")
	w.update(t, breachAware.Add(31*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "done"}, "")
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, breachInput("DE", breachAware))
	st := w.result(t)

	c := clockOf(st, subjects)
	assert.Equal(t, workflows.ClockExempt, c.Status)
	assert.Equal(t, []breachclock.Exemption{breachclock.Encrypted, breachclock.Neutralised, breachclock.Disproportionate}, c.Exemptions)
	require.NotNil(t, c.Notification)
	assert.Equal(t, breachclock.Encrypted, c.Notification.Exemption)
	assert.Empty(t, w.alarmTimes(subjects), "an exempt clock reminds nobody")
	var row *store.BreachNotification
	for _, s := range w.steps {
		if s.Notification != nil && s.Notification.RuleID == subjects {
			row = s.Notification
		}
	}
	require.NotNil(t, row, "the exemption is recorded in the register")
	assert.Equal(t, "encrypted", row.Exemption)
	assert.Equal(t, "AES-256 at rest; the key was not on the laptop", row.ExemptionRationale)
	assert.Contains(t, st.Steps[len(st.Steps)-3].Note, "not told individually under gdpr-art34-subjects: encrypted")
}

// A breach entered after its 72 hours have passed is escalated at once, but only once its
// opening is recorded: the alarm records its clock against the breach's row in the register.
func TestBreachEnteredLateEscalatesAfterItsOpeningIsRecorded(t *testing.T) {
	w := newBreachWorld(t, breachAware.Add(100*time.Hour))
	var mu sync.Mutex
	var order []string
	w.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, info.ActivityType.Name+" started")
	})
	w.env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, info.ActivityType.Name+" completed")
	})
	w.update(t, breachAware.Add(101*time.Hour), workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "gdpr-art33-authority",
		Actor: "dpo@salon", Reference: "BfDI-2026-120", LateReasons: "the breach came to light through the processor on day 4"}, "")
	w.update(t, breachAware.Add(102*time.Hour), workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo@salon", Reason: "documented"}, "")
	w.env.ExecuteWorkflow(workflows.BreachWorkflow, breachInput("DE", breachAware))
	w.result(t)

	require.NotEmpty(t, w.alarmTimes("gdpr-art33-authority"), "the clock was past its limit when entered")
	opened := slices.Index(order, "RecordBreach completed")
	reminded := slices.Index(order, "RemindBreach started")
	require.GreaterOrEqual(t, opened, 0, "%v", order)
	require.GreaterOrEqual(t, reminded, 0, "%v", order)
	assert.Less(t, opened, reminded, "the escalation waits for the opening's record: %v", order)
}
