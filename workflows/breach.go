package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/store"
)

// Names of the breach workflow's query and updates. Updates carry staff's and the DPO's entries
// and are checked by validators before they enter history.
const (
	QueryBreach              = "breach"
	UpdateBreachContent      = "breach_content"
	UpdateBreachAssessment   = "breach_assessment"
	UpdateBreachNotification = "breach_notification"
	UpdateBreachMateriality  = "breach_materiality"
	UpdateBreachClose        = "breach_close"
	// UpdateBreachSubjects starts notifying the people affected (BreachNoticeWorkflow).
	UpdateBreachSubjects = "breach_subjects"
)

// Breach statuses.
const (
	BreachOpen   = "open"
	BreachClosed = "closed"
)

// Clock statuses.
const (
	ClockWaiting      = "waiting"       // applies, but its starting event has not happened
	ClockRunning      = "running"       // started, nobody notified yet
	ClockEscalated    = "escalated"     // past its limit (or target) with nobody notified
	ClockNotified     = "notified"      // notified in time
	ClockNotifiedLate = "notified_late" // notified after the limit, with the reasons
	ClockExempt       = "exempt"        // the people need not be told individually (Art. 34(3)(a), (b))
	ClockDocumented   = "documented"    // a register obligation: nothing to notify
	ClockWithdrawn    = "withdrawn"     // no longer applies (e.g. assessed as no risk)
)

// BreachFacts are what decides which notification obligations apply.
type BreachFacts struct {
	// Establishment is the tenant's jurisdiction (ISO 3166: DE, or US-CA for a US state).
	Establishment string                  `json:"establishment"`
	Affected      []breachclock.Residents `json:"affected,omitempty"`
	Listed        bool                    `json:"listed,omitempty"`
	HIPAA         bool                    `json:"hipaa,omitempty"`
	NIS2          bool                    `json:"nis2,omitempty"`
	SmallAgent    bool                    `json:"small_agent,omitempty"`
	// Reminders is the tenant's reminder schedule (config tenants[].breach.reminders).
	Reminders *breachclock.Reminders `json:"reminders,omitempty"`
}

// BreachInput opens a breach workflow. The workflow ID is BreachID.
type BreachInput struct {
	BreachID string
	TenantID string
	Title    string
	// AwareAt is when the controller became aware of the breach: what the clocks count from. It
	// may be earlier than the opening.
	AwareAt      time.Time
	DeterminedAt *time.Time // when a breach was determined to have occurred (US states); nil: AwareAt
	Facts        BreachFacts
	Content      *BreachContent // the first content, if known at opening
	OpenedBy     string
}

// BreachContent is an update of the Art. 33(3) content as it arrives in phases (33(4)): empty
// fields keep what the previous version said.
type BreachContent struct {
	store.Art33
	// Affected, when given, replaces the affected people's count by jurisdiction.
	Affected []breachclock.Residents `json:"affected,omitempty"`
	Actor    string                  `json:"actor,omitempty"`
}

// BreachAssessment is the DPO's assessment of the risk to the people affected.
type BreachAssessment struct {
	Risk      string    `json:"risk"` // none, risk or high
	Rationale string    `json:"rationale"`
	Actor     string    `json:"actor"`
	At        time.Time `json:"at,omitzero"`
}

// BreachNotification records the notification made under one clock.
type BreachNotification struct {
	Rule       string    `json:"rule"`
	NotifiedAt time.Time `json:"notified_at,omitzero"` // zero: now
	Reference  string    `json:"reference,omitempty"`  // e.g. the authority's case number
	// LateReasons are required when the notification is after the clock's limit (Art. 33(1)).
	LateReasons string `json:"late_reasons,omitempty"`
	Late        bool   `json:"late"`
	// Exemption records, instead of a notification, the ground on which the people need not be
	// told individually, for a clock whose rule allows it (GDPR Art. 34(3)), with Rationale.
	// "disproportionate" needs the public communication made instead, named in Reference.
	Exemption breachclock.Exemption `json:"exemption,omitempty"`
	Rationale string                `json:"rationale,omitempty"`
	Actor     string                `json:"actor"`
}

// BreachMateriality records a listed company's determination that the incident is material.
type BreachMateriality struct {
	DeterminedAt time.Time `json:"determined_at,omitzero"` // zero: now
	Actor        string    `json:"actor"`
}

// BreachClock is one obligation with where its clock stands.
type BreachClock struct {
	breachclock.Obligation
	Status       string              `json:"status"`
	Notification *BreachNotification `json:"notification,omitempty"`
	// RemainingSeconds is the time left to Due as of BreachState.AsOf; negative once past.
	RemainingSeconds *int64   `json:"remaining_seconds,omitempty"`
	Alarms           []string `json:"alarms,omitempty"` // the reminders and escalation sent
}

// BreachState is the breach as the query and the register see it.
type BreachState struct {
	BreachID       string             `json:"breach_id"`
	TenantID       string             `json:"tenant_id"`
	Title          string             `json:"title"`
	Status         string             `json:"status"`
	AwareAt        time.Time          `json:"aware_at"`
	DeterminedAt   *time.Time         `json:"determined_at,omitempty"`
	HighRiskAt     *time.Time         `json:"high_risk_at,omitempty"`
	MaterialAt     *time.Time         `json:"material_at,omitempty"`
	Facts          BreachFacts        `json:"facts"`
	Risk           string             `json:"risk,omitempty"`
	Assessments    []BreachAssessment `json:"assessments,omitempty"`
	ContentVersion int                `json:"content_version"`
	Content        store.Art33        `json:"content"`
	Missing        []string           `json:"missing"` // Art. 33(3) elements not given yet
	Clocks         []BreachClock      `json:"clocks"`
	Steps          []domain.Step      `json:"steps"`
	AsOf           time.Time          `json:"as_of"`
	// Notices are the runs notifying the people affected (Art. 34); Subjects counts, from the
	// register, what became of each person's message (filled in by the breach service).
	Notices  []BreachNoticeRun     `json:"notices,omitempty"`
	Subjects *store.NoticeProgress `json:"subjects,omitempty"`
}

// clock is one obligation's working state; gen changes whenever its plan must be made again.
type clock struct {
	ob     breachclock.Obligation
	status string
	notice *BreachNotification
	alarms []string
	gen    int
}

type breach struct {
	in     BreachInput
	rules  *breachclock.Table
	state  BreachState
	clocks []*clock
	seq    int
	opened bool // the opening is in the register: later steps update its row
	closed bool
	ctx    workflow.Context // the workflow's root context, where clocks run
}

// BreachWorkflow keeps one personal-data breach from opening to closure: its content in
// versions, its assessments, and one clock per notification obligation the rules derive, each
// with its reminders, its escalation at the limit and its record of notification. Every step is
// in the breach register, the audit trail and on lethe.events.
func BreachWorkflow(ctx workflow.Context, in BreachInput) (BreachState, error) {
	ctx = workflow.WithActivityOptions(ctx, recordOptions)
	if err := validateBreachInput(in, workflow.Now(ctx)); err != nil {
		return BreachState{}, temporal.NewNonRetryableApplicationError("opening breach: "+err.Error(), "invalid_input", err)
	}
	b := &breach{in: in, rules: breachclock.Builtin(), ctx: ctx, state: BreachState{
		BreachID: in.BreachID, TenantID: in.TenantID, Title: in.Title, Status: BreachOpen,
		AwareAt: in.AwareAt, DeterminedAt: in.DeterminedAt, Facts: in.Facts, Missing: store.Art33{}.Missing(),
	}}
	if err := b.registerHandlers(ctx); err != nil {
		return b.snapshot(ctx), err
	}
	if err := b.registerNotices(ctx); err != nil {
		return b.snapshot(ctx), err
	}
	step := activities.BreachStep{Open: true, Actor: in.OpenedBy, Action: "breach.opened"}
	if in.Content != nil {
		c := *in.Content
		c.Actor = in.OpenedBy
		step.Content = b.addContent(ctx, c)
	}
	if err := b.derive(ctx); err != nil {
		return b.snapshot(ctx), err
	}
	b.note(ctx, "opened by "+in.OpenedBy)
	if err := b.record(ctx, step); err != nil {
		return b.snapshot(ctx), err
	}
	b.opened = true
	if err := workflow.Await(ctx, func() bool { return b.closed }); err != nil {
		return b.snapshot(ctx), err
	}
	// An update that closed the breach may still be recording.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return b.snapshot(ctx), err
	}
	return b.snapshot(ctx), nil
}

func validateBreachInput(in BreachInput, now time.Time) error {
	switch {
	case in.BreachID == "" || in.TenantID == "":
		return errors.New("a breach needs an id and a tenant")
	case strings.TrimSpace(in.OpenedBy) == "":
		return errors.New("a breach needs who opened it")
	case in.AwareAt.IsZero():
		return errors.New("a breach needs the time of awareness")
	case in.AwareAt.After(now):
		return fmt.Errorf("the time of awareness %s is in the future", in.AwareAt.UTC().Format(time.RFC3339))
	case in.DeterminedAt != nil && in.DeterminedAt.Before(in.AwareAt):
		return errors.New("the determination cannot precede the awareness")
	}
	return validateAffected(in.Facts.Affected)
}

func validateAffected(rs []breachclock.Residents) error {
	for _, r := range rs {
		if strings.TrimSpace(r.Jurisdiction) == "" || r.Count < 0 {
			return fmt.Errorf("affected residents need a jurisdiction and a count of 0 or more (got %q, %d)", r.Jurisdiction, r.Count)
		}
	}
	return nil
}

// derive asks the rules which obligations apply now and brings the clocks in line: new ones
// start, changed ones plan again, ones that no longer apply are withdrawn unless notified.
func (b *breach) derive(ctx workflow.Context) error {
	obs, err := b.rules.Derive(b.facts())
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "invalid_input", err)
	}
	applies := map[string]bool{}
	for _, ob := range obs {
		applies[ob.Rule] = true
		c := b.clock(ob.Rule)
		if c == nil {
			c = &clock{}
			b.clocks = append(b.clocks, c)
			workflow.Go(b.ctx, func(ctx workflow.Context) { b.runClock(ctx, c) })
		}
		c.ob = ob
		c.gen++
		if c.notice == nil {
			c.status = ClockRunning
			switch {
			case ob.Kind == breachclock.Record:
				c.status = ClockDocumented
			case !ob.Running():
				c.status = ClockWaiting
			case slices.Contains(c.alarms, escalationKey(ob)):
				c.status = ClockEscalated
			}
		}
	}
	for _, c := range b.clocks {
		if !applies[c.ob.Rule] && c.notice == nil && c.status != ClockWithdrawn {
			c.status = ClockWithdrawn
			c.gen++
		}
	}
	return nil
}

func (b *breach) clock(rule string) *clock {
	for _, c := range b.clocks {
		if c.ob.Rule == rule {
			return c
		}
	}
	return nil
}

func (b *breach) facts() breachclock.Facts {
	f := breachclock.Facts{
		Establishment: b.state.Facts.Establishment, Affected: b.state.Facts.Affected,
		Listed: b.state.Facts.Listed, HIPAA: b.state.Facts.HIPAA, NIS2: b.state.Facts.NIS2, SmallAgent: b.state.Facts.SmallAgent,
		Risk: breachclock.Risk(b.state.Risk), AwareAt: b.state.AwareAt, Reminders: b.state.Facts.Reminders,
	}
	if b.state.DeterminedAt != nil {
		f.DeterminedAt = *b.state.DeterminedAt
	}
	if b.state.HighRiskAt != nil {
		f.HighRiskAt = *b.state.HighRiskAt
	}
	if b.state.MaterialAt != nil {
		f.MaterialAt = *b.state.MaterialAt
	}
	for _, c := range b.clocks {
		// An exemption is not a notification: nothing that follows one starts from it.
		if c.notice != nil && c.status != ClockExempt {
			f.Notified = append(f.Notified, breachclock.Notice{Rule: c.ob.Rule, At: c.notice.NotifiedAt})
		}
	}
	return f
}

// runClock sends a clock's reminders and, at its limit with nobody notified, its escalation. It
// plans again whenever the clock changes (gen), and ends once notified or withdrawn.
func (b *breach) runClock(ctx workflow.Context, c *clock) {
	// An alarm records its clock in the register, which refers to the breach's row: a clock
	// already past an alarm when the breach is opened waits for the opening to be recorded.
	if workflow.GetVersion(ctx, "clock-after-open", workflow.DefaultVersion, 1) == 1 {
		if err := workflow.Await(ctx, func() bool { return b.opened }); err != nil {
			return
		}
	}
	for !b.closed {
		gen := c.gen
		if c.notice != nil || c.status == ClockWithdrawn || c.status == ClockDocumented {
			if err := workflow.Await(ctx, func() bool { return c.gen != gen || b.closed }); err != nil {
				return
			}
			continue
		}
		kind, at, key := b.nextAlarm(ctx, c)
		if key == "" {
			if err := workflow.Await(ctx, func() bool { return c.gen != gen || b.closed }); err != nil {
				return
			}
			continue
		}
		if wait := at.Sub(workflow.Now(ctx)); wait > 0 {
			changed, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return c.gen != gen || b.closed })
			if err != nil {
				return
			}
			if changed {
				continue
			}
		}
		c.alarms = append(c.alarms, key)
		alarm := activities.BreachAlarm{
			Key: b.in.BreachID + ":" + c.ob.Rule + ":" + key, BreachID: b.in.BreachID, TenantID: b.in.TenantID, Kind: kind,
			Rule: c.ob.Rule, Regime: c.ob.Regime, Notify: c.ob.Notify, Limit: c.ob.Limit, Due: c.ob.Due, At: workflow.Now(ctx),
		}
		if kind == "escalation" {
			c.status = ClockEscalated
			row := b.clockRow(ctx, c)
			alarm.Clock = &row
		}
		if err := workflow.ExecuteActivity(ctx, a.RemindBreach, alarm).Get(ctx, nil); err != nil && ctx.Err() == nil {
			// The clock goes on to its next alarm; the failure is not left unseen.
			b.seq++
			_ = workflow.ExecuteActivity(ctx, a.ReportFailure, activities.Failure{
				Key: b.in.BreachID + ":failed:" + strconv.Itoa(b.seq), TenantID: b.in.TenantID, Activity: "RemindBreach",
				Reason: errorMessage(err), At: workflow.Now(ctx), BreachID: b.in.BreachID,
			}).Get(ctx, nil)
		}
	}
}

// nextAlarm is the clock's next reminder still to come, else its escalation if not yet sent.
// Reminders whose time passed before the clock was planned (awareness long before the opening)
// are not sent late; an escalation always is.
func (b *breach) nextAlarm(ctx workflow.Context, c *clock) (kind string, at time.Time, key string) {
	if !c.ob.Running() {
		return "", time.Time{}, ""
	}
	now := workflow.Now(ctx)
	for i, r := range c.ob.Reminders {
		k := "reminder:" + strconv.Itoa(i+1) + ":" + r.UTC().Format(time.RFC3339)
		if !slices.Contains(c.alarms, k) && r.After(now) {
			return "reminder", r, k
		}
	}
	if k := escalationKey(c.ob); !slices.Contains(c.alarms, k) {
		return "escalation", c.ob.Due, k
	}
	return "", time.Time{}, ""
}

func escalationKey(ob breachclock.Obligation) string {
	return "escalation:" + ob.Due.UTC().Format(time.RFC3339)
}

func (b *breach) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryBreach, func() (BreachState, error) { return b.snapshot(ctx), nil }); err != nil {
		return err
	}
	updates := []struct {
		name     string
		handler  any
		validate any
	}{
		{UpdateBreachContent,
			func(ctx workflow.Context, c BreachContent) (BreachState, error) {
				ctx = workflow.WithActivityOptions(ctx, recordOptions)
				row := b.addContent(ctx, c)
				if c.Affected != nil {
					b.state.Facts.Affected = c.Affected
				}
				return b.change(ctx, activities.BreachStep{Content: row, Actor: c.Actor, Action: "breach.content_updated"},
					"content version "+strconv.Itoa(b.state.ContentVersion)+" by "+c.Actor)
			},
			func(c BreachContent) error {
				if err := b.validateActor(c.Actor); err != nil {
					return err
				}
				if c.SubjectsApprox != nil && *c.SubjectsApprox < 0 || c.RecordsApprox != nil && *c.RecordsApprox < 0 {
					return errors.New("approximate numbers of subjects and records are 0 or more")
				}
				return validateAffected(c.Affected)
			}},
		{UpdateBreachAssessment,
			func(ctx workflow.Context, as BreachAssessment) (BreachState, error) {
				ctx = workflow.WithActivityOptions(ctx, recordOptions)
				as.At = workflow.Now(ctx)
				b.state.Assessments = append(b.state.Assessments, as)
				b.state.Risk = as.Risk
				if as.Risk == string(breachclock.RiskHigh) && b.state.HighRiskAt == nil {
					t := as.At
					b.state.HighRiskAt = &t
				}
				row := &store.BreachAssessment{BreachID: b.in.BreachID, Seq: len(b.state.Assessments), Risk: as.Risk,
					Rationale: as.Rationale, AssessedBy: as.Actor, AssessedAt: as.At}
				return b.change(ctx, activities.BreachStep{Assessment: row, Actor: as.Actor, Action: "breach.assessed",
					Detail: map[string]any{"risk": as.Risk, "assessment": row.Seq}}, "assessed "+as.Risk+" by "+as.Actor)
			},
			func(as BreachAssessment) error {
				if err := b.validateActor(as.Actor); err != nil {
					return err
				}
				if _, err := breachclock.ParseRisk(as.Risk); err != nil || as.Risk != strings.ToLower(as.Risk) {
					return fmt.Errorf("unknown risk %q: want none, risk or high", as.Risk)
				}
				if strings.TrimSpace(as.Rationale) == "" {
					return errors.New("an assessment needs its rationale")
				}
				return nil
			}},
		{UpdateBreachNotification,
			func(ctx workflow.Context, n BreachNotification) (BreachState, error) {
				ctx = workflow.WithActivityOptions(ctx, recordOptions)
				c := b.clock(n.Rule)
				if n.NotifiedAt.IsZero() {
					n.NotifiedAt = workflow.Now(ctx)
				}
				n.Late = b.late(c, n.NotifiedAt)
				c.notice = &n
				c.status = ClockNotified
				if n.Late {
					c.status = ClockNotifiedLate
				}
				note := c.ob.Notify + " notified under " + n.Rule + " by " + n.Actor
				detail := map[string]any{"rule": n.Rule, "rule_version": c.ob.Version, "late": n.Late}
				switch n.Exemption {
				case "":
				case breachclock.Disproportionate:
					note = c.ob.Notify + " told by public communication under " + n.Rule + " (Art. 34(3)(c)), recorded by " + n.Actor
					detail["exemption"] = string(n.Exemption)
				default:
					c.status = ClockExempt
					note = c.ob.Notify + " not told individually under " + n.Rule + ": " + string(n.Exemption) + ", recorded by " + n.Actor
					detail["exemption"] = string(n.Exemption)
				}
				if n.Late {
					note += ", late"
				}
				c.gen++
				row := &store.BreachNotification{BreachID: b.in.BreachID, RuleID: n.Rule, NotifiedAt: n.NotifiedAt, Reference: n.Reference,
					Late: n.Late, LateReasons: n.LateReasons, Exemption: string(n.Exemption), ExemptionRationale: n.Rationale,
					RecordedBy: n.Actor, RecordedAt: workflow.Now(ctx)}
				return b.change(ctx, activities.BreachStep{Notification: row, Actor: n.Actor, Action: "breach.notification_recorded",
					Detail: detail}, note)
			},
			b.validateNotification},
		{UpdateBreachMateriality,
			func(ctx workflow.Context, m BreachMateriality) (BreachState, error) {
				ctx = workflow.WithActivityOptions(ctx, recordOptions)
				t := m.DeterminedAt
				if t.IsZero() {
					t = workflow.Now(ctx)
				}
				b.state.MaterialAt = &t
				return b.change(ctx, activities.BreachStep{Actor: m.Actor, Action: "breach.materiality_determined",
					Detail: map[string]any{"determined_at": t.UTC().Format(time.RFC3339)}}, "determined material by "+m.Actor)
			},
			func(m BreachMateriality) error {
				if err := b.validateActor(m.Actor); err != nil {
					return err
				}
				if !b.state.Facts.Listed {
					return errors.New("the tenant is not a listed company: no materiality determination applies")
				}
				if b.state.MaterialAt != nil {
					return errors.New("the materiality determination is already recorded")
				}
				if !m.DeterminedAt.IsZero() && (m.DeterminedAt.Before(b.state.AwareAt) || m.DeterminedAt.After(workflow.Now(ctx))) {
					return errors.New("the materiality determination must lie between the awareness and now")
				}
				return nil
			}},
		{UpdateBreachClose,
			func(ctx workflow.Context, d Decision) (BreachState, error) {
				ctx = workflow.WithActivityOptions(ctx, recordOptions)
				b.state.Status = BreachClosed
				st, err := b.change(ctx, activities.BreachStep{Actor: d.Actor, Action: "breach.closed"}, "closed by "+d.Actor+": "+d.Reason)
				b.closed = true
				return st, err
			},
			func(d Decision) error {
				if err := b.validateActor(d.Actor); err != nil {
					return err
				}
				if strings.TrimSpace(d.Reason) == "" {
					return errors.New("closing a breach needs a reason")
				}
				var open []string
				for _, c := range b.clocks {
					if c.ob.Kind == breachclock.Deadline && c.notice == nil && (c.status == ClockRunning || c.status == ClockEscalated) {
						open = append(open, c.ob.Rule)
					}
				}
				if len(open) > 0 {
					return fmt.Errorf("clocks still run with nobody notified: %s", strings.Join(open, ", "))
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

func (b *breach) validateActor(actor string) error {
	if strings.TrimSpace(actor) == "" {
		return errors.New("the entry needs an actor")
	}
	if b.state.Status == BreachClosed {
		return errors.New("the breach is closed")
	}
	return nil
}

func (b *breach) validateNotification(n BreachNotification) error {
	if err := b.validateActor(n.Actor); err != nil {
		return err
	}
	c := b.clock(n.Rule)
	switch {
	case c == nil:
		return fmt.Errorf("no clock %q runs for this breach", n.Rule)
	case c.notice != nil:
		return fmt.Errorf("the notification under %s is already recorded", n.Rule)
	case c.status == ClockDocumented || c.status == ClockWithdrawn:
		return fmt.Errorf("the %s clock is %s: there is nothing to notify", n.Rule, c.status)
	case c.status == ClockWaiting:
		return fmt.Errorf("the %s clock has not started: it waits for %s", n.Rule, c.ob.Waiting)
	}
	at := n.NotifiedAt
	if at.IsZero() {
		at = workflow.Now(b.ctx)
	}
	if at.Before(c.ob.StartedAt) || at.After(workflow.Now(b.ctx)) {
		return errors.New("the time of notification must lie between the clock's start and now")
	}
	if n.Exemption != "" {
		switch {
		case len(c.ob.Exemptions) == 0:
			return fmt.Errorf("%s allows no exemption: record the notification made", n.Rule)
		case !slices.Contains(c.ob.Exemptions, n.Exemption):
			return fmt.Errorf("%q is not an exemption under %s (it allows %s)", n.Exemption, n.Rule, joinExemptions(c.ob.Exemptions))
		case strings.TrimSpace(n.Rationale) == "":
			return fmt.Errorf("an exemption under %s needs its rationale: why the ground holds for this breach", n.Rule)
		case n.Exemption == breachclock.Disproportionate && strings.TrimSpace(n.Reference) == "":
			return errors.New("telling each person would be disproportionate only with a public communication instead: name it in the reference")
		}
	}
	if b.late(c, at) && strings.TrimSpace(n.LateReasons) == "" {
		return fmt.Errorf("the notification under %s is after its limit (%s): give the reasons for the delay",
			n.Rule, c.ob.Due.UTC().Format(time.RFC3339))
	}
	return nil
}

func joinExemptions(es []breachclock.Exemption) string {
	var s []string
	for _, e := range es {
		s = append(s, string(e))
	}
	return strings.Join(s, ", ")
}

// late reports whether a notification at t is after the clock's limit. An open clock's target
// is Lethe's recommendation, not a limit.
func (b *breach) late(c *clock, t time.Time) bool {
	return c.ob.Kind == breachclock.Deadline && !t.Before(c.ob.Due)
}

// addContent merges an update into the content and returns the new version's row.
func (b *breach) addContent(ctx workflow.Context, c BreachContent) *store.BreachContent {
	cur := &b.state.Content
	for _, f := range []struct{ dst, src *string }{
		{&cur.Nature, &c.Nature}, {&cur.ContactPoint, &c.ContactPoint}, {&cur.Consequences, &c.Consequences},
		{&cur.Measures, &c.Measures}, {&cur.ToFollow, &c.ToFollow},
	} {
		if strings.TrimSpace(*f.src) != "" {
			*f.dst = *f.src
		}
	}
	if c.SubjectCategories != nil {
		cur.SubjectCategories = c.SubjectCategories
	}
	if c.RecordCategories != nil {
		cur.RecordCategories = c.RecordCategories
	}
	if c.SubjectsApprox != nil {
		cur.SubjectsApprox = c.SubjectsApprox
	}
	if c.RecordsApprox != nil {
		cur.RecordsApprox = c.RecordsApprox
	}
	b.state.ContentVersion++
	b.state.Missing = cur.Missing()
	return &store.BreachContent{BreachID: b.in.BreachID, Version: b.state.ContentVersion, Art33: *cur,
		RecordedBy: c.Actor, RecordedAt: workflow.Now(ctx)}
}

// change derives the clocks again after an entry and records the step, once the opening is
// recorded (an entry may arrive while it is).
func (b *breach) change(ctx workflow.Context, step activities.BreachStep, note string) (BreachState, error) {
	if err := workflow.Await(ctx, func() bool { return b.opened }); err != nil {
		return b.snapshot(ctx), err
	}
	if err := b.derive(ctx); err != nil {
		return b.snapshot(ctx), err
	}
	b.note(ctx, note)
	err := b.record(ctx, step)
	return b.snapshot(ctx), err
}

func (b *breach) note(ctx workflow.Context, text string) {
	b.state.Steps = append(b.state.Steps, domain.Step{At: workflow.Now(ctx), Status: b.state.Status, Note: text})
}

// record writes a step to the register, the audit trail and lethe.events, with every clock.
func (b *breach) record(ctx workflow.Context, step activities.BreachStep) error {
	b.seq++
	step.Key = b.in.BreachID + ":" + strconv.Itoa(b.seq)
	step.At = workflow.Now(ctx)
	step.Breach = store.BreachRow{ID: b.in.BreachID, TenantID: b.in.TenantID, Title: b.in.Title, Status: b.state.Status,
		AwareAt: b.state.AwareAt, DeterminedAt: b.state.DeterminedAt, MaterialAt: b.state.MaterialAt, Risk: b.state.Risk, OpenedBy: b.in.OpenedBy}
	step.Facts = b.state.Facts
	step.State = b.snapshot(ctx)
	for _, c := range b.clocks {
		step.Clocks = append(step.Clocks, b.clockRow(ctx, c))
	}
	if step.Detail == nil {
		step.Detail = map[string]any{}
	}
	step.Detail["content_version"] = b.state.ContentVersion
	return workflow.ExecuteActivity(ctx, a.RecordBreach, step).Get(ctx, nil)
}

func (b *breach) clockRow(ctx workflow.Context, c *clock) store.BreachClock {
	row := store.BreachClock{BreachID: b.in.BreachID, RuleID: c.ob.Rule, RuleVersion: c.ob.Version, Regime: c.ob.Regime,
		Notify: c.ob.Notify, Kind: string(c.ob.Kind), Starts: string(c.ob.Starts), Limit: c.ob.Limit, Source: c.ob.Source,
		Status: c.status, UpdatedAt: workflow.Now(ctx)}
	if !c.ob.StartedAt.IsZero() {
		t := c.ob.StartedAt
		row.StartedAt = &t
	}
	if !c.ob.Due.IsZero() {
		t := c.ob.Due
		row.DueAt = &t
	}
	return row
}

// snapshot is the state with every clock as of now.
func (b *breach) snapshot(ctx workflow.Context) BreachState {
	st := b.state
	st.Steps = slices.Clone(b.state.Steps)
	st.Notices = slices.Clone(b.state.Notices)
	st.Clocks = make([]BreachClock, 0, len(b.clocks))
	for _, c := range b.clocks {
		st.Clocks = append(st.Clocks, BreachClock{Obligation: c.ob, Status: c.status, Notification: c.notice, Alarms: slices.Clone(c.alarms)})
	}
	st.SetAsOf(workflow.Now(ctx))
	return st
}

// SetAsOf sets the time left on every running clock as of now; readers call it with the time
// they read the state, since a workflow's own clock only moves when it works.
func (st *BreachState) SetAsOf(now time.Time) {
	st.AsOf = now
	for i := range st.Clocks {
		c := &st.Clocks[i]
		c.RemainingSeconds = nil
		if !c.Due.IsZero() && (c.Status == ClockRunning || c.Status == ClockEscalated) {
			left := int64(c.Due.Sub(now) / time.Second)
			c.RemainingSeconds = &left
		}
	}
}
