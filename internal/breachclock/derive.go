package breachclock

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/internal/deadline"
)

// Facts are what Derive needs to know about one breach and its tenant. Times are instants; a zero
// time is an event that has not happened (yet).
type Facts struct {
	// Establishment is the tenant's jurisdiction: an ISO 3166-1 country (DE) or 3166-2
	// subdivision (US-CA).
	Establishment string
	// Affected counts the affected people by the jurisdiction they live in (same codes).
	Affected   []Residents
	Listed     bool // the tenant is a listed company (SEC)
	HIPAA      bool // the tenant is a HIPAA covered entity or business associate
	NIS2       bool // the tenant is an essential or important entity under NIS2
	SmallAgent bool // a small processing agent under LGPD
	Risk       Risk
	// Reminders is the tenant's own reminder schedule, in place of the table's default; a rule
	// with a schedule of its own keeps it. Nil: the table's.
	Reminders *Reminders

	AwareAt      time.Time
	DeterminedAt time.Time // zero: AwareAt
	HighRiskAt   time.Time
	MaterialAt   time.Time
	// Notified holds the recorded notifications, for clocks that start from another's.
	Notified []Notice
}

// Residents is how many affected people live in one jurisdiction.
type Residents struct {
	Jurisdiction string `json:"jurisdiction"`
	Count        int    `json:"count"`
}

// Notice is a recorded notification under a rule.
type Notice struct {
	Rule string    `json:"rule"`
	At   time.Time `json:"at"`
}

// Kind says what an obligation asks.
type Kind string

const (
	Deadline Kind = "deadline" // notify before Due
	Open     Kind = "open"     // notify without undue delay; Due is the recommended target
	Record   Kind = "record"   // document the breach; no clock
)

// Obligation is one rule that applies to the breach, with its clock.
type Obligation struct {
	Rule    string `json:"rule"`
	Version int    `json:"version"`
	Regime  string `json:"regime"`
	Notify  string `json:"notify"`
	Kind    Kind   `json:"kind"`
	Starts  Event  `json:"starts"`
	// StartedAt is when the clock started; zero while it waits for its event (Waiting).
	StartedAt time.Time `json:"started_at,omitzero"`
	Waiting   string    `json:"waiting,omitempty"`
	// Due is the first instant a notification is late (for an open clock: past the target).
	Due       time.Time   `json:"due,omitzero"`
	Limit     string      `json:"limit"` // in words, e.g. "3 business days (BR holidays)"
	Reminders []time.Time `json:"reminders,omitempty"`
	Skipped   []string    `json:"skipped,omitempty"` // days not counted, e.g. "Fri 2026-11-20 public holiday (…)"
	// Exemptions are the grounds on which the people need not be told individually.
	Exemptions []Exemption `json:"exemptions,omitempty"`
	Source     string      `json:"source"`
}

// Running reports whether the obligation has a clock that has started.
func (o Obligation) Running() bool { return o.Kind != Record && !o.StartedAt.IsZero() }

// Derive returns every obligation of the table that applies to the breach, in the table's order.
// Clocks whose starting event has not happened are listed with Waiting set.
func (t *Table) Derive(f Facts) ([]Obligation, error) {
	if f.AwareAt.IsZero() {
		return nil, fmt.Errorf("deriving breach obligations: no time of awareness")
	}
	var out []Obligation
	seen := map[string]bool{}
	for i := range t.Rules {
		id := t.Rules[i].ID
		if seen[id] {
			continue
		}
		seen[id] = true
		r, ok := t.Rule(id, f.AwareAt)
		if !ok || !t.applies(r, f) {
			continue
		}
		o, err := t.obligation(r, f)
		if err != nil {
			return nil, fmt.Errorf("deriving the clock of %s: %w", r.ID, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func (t *Table) applies(r *Rule, f Facts) bool {
	w := r.When
	for _, c := range []struct {
		want *bool
		have bool
	}{{w.Listed, f.Listed}, {w.HIPAA, f.HIPAA}, {w.NIS2, f.NIS2}, {w.SmallAgent, f.SmallAgent}} {
		if c.want != nil && *c.want != c.have {
			return false
		}
	}
	switch {
	case w.Risk == Unassessed:
	case f.Risk == Unassessed:
		// Not yet assessed: notifiable until the DPO finds otherwise, except that a clock for
		// high risk waits for that finding.
		if w.Risk == RiskHigh {
			return false
		}
	case f.Risk.rank() < w.Risk.rank():
		return false
	}
	est := len(w.Establishment) > 0 && t.within(f.Establishment, w.Establishment)
	res := len(w.Residents) > 0 && t.residents(f, w.Residents, false) > 0
	switch {
	case len(w.Establishment) > 0 && len(w.Residents) > 0:
		if !est && !res {
			return false
		}
	case len(w.Establishment) > 0 && !est, len(w.Residents) > 0 && !res:
		return false
	}
	if w.MinResidents > 0 && t.residents(f, w.Residents, w.PerJurisdiction) < w.MinResidents {
		return false
	}
	if w.MaxResidents > 0 && t.residents(f, w.Residents, false) > w.MaxResidents {
		return false
	}
	return true
}

// residents counts the affected people living in the jurisdictions (all when none are given):
// together, or the most in any one of them.
func (t *Table) residents(f Facts, in []string, most bool) int {
	n := 0
	for _, a := range f.Affected {
		if a.Count <= 0 || (len(in) > 0 && !t.within(a.Jurisdiction, in)) {
			continue
		}
		if most {
			n = max(n, a.Count)
		} else {
			n += a.Count
		}
	}
	return n
}

// within reports whether jurisdiction j is one of the codes or groups (US-CA is within US).
func (t *Table) within(j string, codes []string) bool {
	j = strings.ToUpper(strings.TrimSpace(j))
	if j == "" {
		return false
	}
	country, _, _ := strings.Cut(j, "-")
	for _, c := range codes {
		if members, ok := t.Groups[c]; ok {
			if slices.Contains(members, country) || slices.Contains(members, j) {
				return true
			}
			continue
		}
		if j == c || strings.HasPrefix(j, c+"-") {
			return true
		}
	}
	return false
}

func (t *Table) obligation(r *Rule, f Facts) (Obligation, error) {
	o := Obligation{
		Rule: r.ID, Version: r.Version, Regime: r.Regime, Notify: r.Notify, Kind: Deadline,
		Starts: r.Starts, Limit: r.Limit.words(), Source: r.Source, Exemptions: slices.Clone(r.Exemptions),
	}
	switch {
	case r.Limit.Record:
		o.Kind = Record
		return o, nil
	case r.Limit.Open != "":
		o.Kind = Open
	}
	start, waiting := r.start(f)
	if start.IsZero() {
		o.Waiting = waiting
		return o, nil
	}
	o.StartedAt = start
	l := r.Limit
	local := start.In(r.loc)
	switch {
	case l.Hours > 0:
		o.Due = start.Add(time.Duration(l.Hours) * time.Hour)
	case l.TargetHours > 0:
		o.Due = start.Add(time.Duration(l.TargetHours) * time.Hour)
	case l.Days > 0:
		o.Due = deadline.OverdueAt(local.AddDate(0, 0, l.Days))
	case l.Months > 0:
		o.Due = deadline.OverdueAt(deadline.AddMonths(local, l.Months))
	case l.AfterYearEndDays > 0:
		yearEnd := time.Date(local.Year(), time.December, 31, 0, 0, 0, 0, r.loc)
		o.Due = deadline.OverdueAt(yearEnd.AddDate(0, 0, l.AfterYearEndDays))
	case l.BusinessDays > 0:
		last, skipped, err := deadline.AddWorkingDays(local, l.BusinessDays, l.Holidays)
		if err != nil {
			return o, err
		}
		o.Due = deadline.OverdueAt(last)
		for _, s := range skipped {
			o.Skipped = append(o.Skipped, s.Date.Format("Mon 2006-01-02")+" "+s.Reason)
		}
	}
	rm := t.Reminders
	if f.Reminders != nil {
		rm = *f.Reminders
	}
	if r.Reminders != nil {
		rm = *r.Reminders
	}
	span := int64(o.Due.Sub(start))
	for _, at := range rm.At {
		o.Reminders = append(o.Reminders, start.Add(time.Duration(span*int64(at)/int64(rm.Of)).Truncate(time.Second)))
	}
	return o, nil
}

// start is when the rule's clock starts for f, or what it waits for.
func (r *Rule) start(f Facts) (time.Time, string) {
	switch r.Starts {
	case Determination:
		if !f.DeterminedAt.IsZero() {
			return f.DeterminedAt, ""
		}
		return f.AwareAt, ""
	case HighRisk:
		return f.HighRiskAt, "a high-risk finding"
	case Materiality:
		return f.MaterialAt, "the materiality determination"
	case Notified:
		for _, n := range f.Notified {
			if n.Rule == r.After {
				return n.At, ""
			}
		}
		return time.Time{}, "the notification under " + r.After
	}
	return f.AwareAt, ""
}

func (l Limit) words() string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s", unit)
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case l.Hours > 0:
		return plural(l.Hours, "hour")
	case l.Days > 0:
		return plural(l.Days, "calendar day")
	case l.BusinessDays > 0:
		if l.Holidays == "" {
			return plural(l.BusinessDays, "business day") + " (weekends excluded)"
		}
		return plural(l.BusinessDays, "business day") + " (weekends and " + l.Holidays + " public holidays excluded)"
	case l.Months > 0:
		return plural(l.Months, "month")
	case l.AfterYearEndDays > 0:
		return plural(l.AfterYearEndDays, "calendar day") + " after the end of the calendar year"
	case l.Open != "":
		return l.Open + " (target " + plural(l.TargetHours, "hour") + ")"
	}
	return "documented, not notified"
}
