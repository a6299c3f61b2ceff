// Package breachclock knows every notification clock a personal-data breach can start: who must
// be told, from which event, within what limit, and under which conditions. The rules are data
// (rules.yaml, embedded and validated at load), each with its version and source; Derive turns
// them and the facts of one breach into obligations with due times.
//
// It is pure and deterministic (no clock, no I/O after load, no map iteration in Derive), so
// workflows call it directly. Business days use internal/deadline's holiday calendars.
package breachclock

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // rules name their time zones whatever the machine has installed

	"gopkg.in/yaml.v3"

	"github.com/lethe-privacy/lethe/internal/deadline"
)

//go:embed rules.yaml
var embedded []byte

// Event is what starts a clock.
type Event string

const (
	Awareness     Event = "awareness"     // the controller becomes aware of (discovers) the breach
	Determination Event = "determination" // it determines a breach occurred; awareness when not recorded
	HighRisk      Event = "high_risk"     // the assessment finds a high risk to the people affected
	Materiality   Event = "materiality"   // a listed company determines the incident material
	Notified      Event = "notified"      // the notification under another rule (Rule.After) is recorded
)

// Risk is the DPO's assessment of the risk to the people affected.
type Risk string

const (
	Unassessed Risk = ""
	RiskNone   Risk = "none"
	RiskSome   Risk = "risk"
	RiskHigh   Risk = "high"
)

func (r Risk) rank() int { return slices.Index([]Risk{RiskNone, RiskSome, RiskHigh}, r) }

// ParseRisk accepts none, risk or high.
func ParseRisk(s string) (Risk, error) {
	r := Risk(strings.ToLower(strings.TrimSpace(s)))
	if r == Unassessed || r.rank() < 0 {
		return "", fmt.Errorf("unknown risk %q: want none, risk or high", s)
	}
	return r, nil
}

// Table is the whole set of rules.
type Table struct {
	Version   string              `yaml:"version"`
	Reminders Reminders           `yaml:"reminders"`
	Groups    map[string][]string `yaml:"groups"`
	Rules     []Rule              `yaml:"rules"`
}

// Reminders are hours after the clock starts, for a clock Of hours long; a clock of another
// length gets them in proportion.
type Reminders struct {
	Of int   `yaml:"of" json:"of"`
	At []int `yaml:"at" json:"at"`
}

// Rule is one obligation in one version.
type Rule struct {
	ID        string     `yaml:"id"`
	Version   int        `yaml:"version"`
	Regime    string     `yaml:"regime"`
	Notify    string     `yaml:"notify"` // who is told
	Starts    Event      `yaml:"starts"`
	After     string     `yaml:"after"` // for Starts == Notified: the rule whose notification starts this one
	Limit     Limit      `yaml:"limit"`
	Zone      string     `yaml:"zone"` // where day-based limits end at midnight
	When      When       `yaml:"when"`
	Effective string     `yaml:"effective"` // YYYY-MM-DD: applies to clocks started on or after
	Until     string     `yaml:"until"`     // YYYY-MM-DD: applies to clocks started before
	Reminders *Reminders `yaml:"reminders"` // nil: the table's
	// Exemptions are the grounds on which the people need not be told individually (GDPR
	// Art. 34(3)); a clock with none cannot be closed by an exemption.
	Exemptions []Exemption `yaml:"exemptions"`
	Source     string      `yaml:"source"`
	Notes      string      `yaml:"notes"`

	loc             *time.Location
	effective, stop time.Time
}

// Exemption is a ground for not telling the people affected individually.
type Exemption string

// The grounds of GDPR Art. 34(3).
const (
	Encrypted        Exemption = "encrypted"        // (a) the data was unintelligible to anyone not authorised, e.g. encrypted
	Neutralised      Exemption = "neutralised"      // (b) later measures ensure the high risk is no longer likely
	Disproportionate Exemption = "disproportionate" // (c) telling each would be disproportionate: a public communication instead
)

// Exemptions lists every ground, in the order of Art. 34(3).
var Exemptions = []Exemption{Encrypted, Neutralised, Disproportionate}

// Limit is how long the clock runs: exactly one field (with Holidays or TargetHours) is set.
type Limit struct {
	Hours        int    `yaml:"hours"`         // absolute, no working-day roll
	Days         int    `yaml:"days"`          // calendar days
	BusinessDays int    `yaml:"business_days"` // weekends and Holidays' public holidays excluded
	Holidays     string `yaml:"holidays"`      // ISO country code of a deadline calendar; "" weekends only
	Months       int    `yaml:"months"`
	// AfterYearEndDays counts calendar days from the end of the calendar year in which the
	// clock started (HIPAA's annual log of small breaches).
	AfterYearEndDays int    `yaml:"after_year_end_days"`
	Open             string `yaml:"open"`         // no fixed limit, e.g. "without undue delay"
	TargetHours      int    `yaml:"target_hours"` // Lethe's recommended target for an open clock
	Record           bool   `yaml:"record"`       // nothing to notify: the breach is documented
}

// When holds a rule's conditions; every one given must hold.
type When struct {
	Establishment []string `yaml:"establishment"`
	Residents     []string `yaml:"residents"`
	MinResidents  int      `yaml:"min_residents"`
	// MaxResidents: the rule applies only up to this many affected residents of the listed
	// jurisdictions together (the small breaches of a threshold rule).
	MaxResidents    int   `yaml:"max_residents"`
	PerJurisdiction bool  `yaml:"per_jurisdiction"`
	Risk            Risk  `yaml:"risk"`
	Listed          *bool `yaml:"listed"`
	HIPAA           *bool `yaml:"hipaa"`
	NIS2            *bool `yaml:"nis2"`
	SmallAgent      *bool `yaml:"small_agent"`
}

// Builtin is Lethe's rules table. A test loads it, so a release with an invalid table does not
// pass its tests.
func Builtin() *Table { return builtin }

var builtin = func() *Table {
	t, err := Load(embedded)
	if err != nil {
		panic("breachclock: the embedded rules.yaml is invalid: " + err.Error())
	}
	return t
}()

// Load reads and validates a rules table. Errors name the rule and what is wrong with it.
func Load(data []byte) (*Table, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var t Table
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("reading the breach rules: %w", err)
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

var (
	idPattern           = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	jurisdictionPattern = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)
)

func (t *Table) validate() error {
	var errs []error
	if t.Version == "" {
		errs = append(errs, errors.New("the table has no version"))
	}
	if err := t.Reminders.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("the table's reminders: %w", err))
	}
	groups := slices.Sorted(maps.Keys(t.Groups))
	for _, g := range groups {
		for _, m := range t.Groups[g] {
			if !jurisdictionPattern.MatchString(m) {
				errs = append(errs, fmt.Errorf("group %s: %q is not an ISO 3166 code", g, m))
			}
		}
	}
	ids := map[string]bool{}
	for i := range t.Rules {
		ids[t.Rules[i].ID] = true
	}
	for i := range t.Rules {
		r := &t.Rules[i]
		name := fmt.Sprintf("rule %q version %d", r.ID, r.Version)
		if r.ID == "" {
			name = fmt.Sprintf("rule #%d (no id)", i+1)
		}
		for _, p := range r.validate(t, ids) {
			errs = append(errs, fmt.Errorf("%s: %s", name, p))
		}
		for _, o := range t.Rules[:i] {
			if o.ID != r.ID {
				continue
			}
			if o.Version == r.Version {
				errs = append(errs, fmt.Errorf("%s: the version is given twice", name))
			} else if overlaps(o, *r) {
				errs = append(errs, fmt.Errorf("%s: in effect at the same time as version %d", name, o.Version))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid breach rules: %w", errors.Join(errs...))
	}
	return nil
}

// Validate checks that every reminder falls inside its clock.
func (rm Reminders) Validate() error {
	if rm.Of <= 0 {
		return errors.New("of must be a positive number of hours")
	}
	for _, at := range rm.At {
		if at <= 0 || at >= rm.Of {
			return fmt.Errorf("reminder at %d hours is not within a clock of %d hours", at, rm.Of)
		}
	}
	return nil
}

func (r *Rule) validate(t *Table, ids map[string]bool) []string {
	var p []string
	bad := func(f string, a ...any) { p = append(p, fmt.Sprintf(f, a...)) }
	if r.ID == "" {
		bad("the id is required")
	} else if !idPattern.MatchString(r.ID) {
		bad("the id must be lower-case words joined by hyphens")
	}
	if r.Version < 1 {
		bad("the version must be 1 or more")
	}
	if r.Regime == "" || r.Notify == "" {
		bad("regime and notify (who is told) are required")
	}
	if strings.TrimSpace(r.Source) == "" {
		bad("the source is required")
	}
	switch r.Starts {
	case Awareness, Determination, HighRisk, Materiality:
		if r.After != "" {
			bad("after is only for a clock that starts when another is notified")
		}
	case Notified:
		if !ids[r.After] || r.After == r.ID {
			bad("starts when notified, so after must name another rule (got %q)", r.After)
		}
	default:
		bad("unknown starting event %q: want awareness, determination, high_risk, materiality or notified", r.Starts)
	}

	l := r.Limit
	set := 0
	for _, on := range []bool{l.Hours > 0, l.Days > 0, l.BusinessDays > 0, l.Months > 0, l.AfterYearEndDays > 0, l.Open != "", l.Record} {
		if on {
			set++
		}
	}
	if set != 1 || l.Hours < 0 || l.Days < 0 || l.BusinessDays < 0 || l.Months < 0 || l.AfterYearEndDays < 0 {
		bad("the limit must be exactly one of hours, days, business_days, months, after_year_end_days, open or record")
	}
	if (l.Open != "") != (l.TargetHours > 0) {
		bad("an open limit needs target_hours, and only an open limit has one")
	}
	if l.Holidays != "" {
		if l.BusinessDays == 0 {
			bad("holidays are only for business_days")
		} else if c, err := deadline.ParseCountry(l.Holidays); err != nil || c != l.Holidays {
			bad("no holiday calendar %q (want one of %s)", l.Holidays, strings.Join(deadline.Countries(), ", "))
		}
	}
	dayBased := l.Days > 0 || l.BusinessDays > 0 || l.Months > 0 || l.AfterYearEndDays > 0
	if dayBased && r.Zone == "" {
		bad("a limit in days ends at midnight somewhere: zone is required")
	}
	if r.Zone != "" {
		loc, err := time.LoadLocation(r.Zone)
		if err != nil {
			bad("unknown zone %q", r.Zone)
		}
		r.loc = loc
	} else {
		r.loc = time.UTC
	}

	w := r.When
	for _, j := range slices.Concat(w.Establishment, w.Residents) {
		if _, group := t.Groups[j]; !group && !jurisdictionPattern.MatchString(j) {
			bad("jurisdiction %q is neither a group nor an ISO 3166 code such as DE or US-CA", j)
		}
	}
	if w.Risk != Unassessed && w.Risk.rank() < 0 {
		bad("unknown risk %q: want none, risk or high", w.Risk)
	}
	if w.MinResidents < 0 || (w.PerJurisdiction && w.MinResidents == 0) {
		bad("min_residents must be positive (and is required with per_jurisdiction)")
	}
	if w.MaxResidents < 0 || (w.MaxResidents > 0 && (w.PerJurisdiction || w.MaxResidents < w.MinResidents)) {
		bad("max_residents must be positive, at least min_residents, and counts jurisdictions together")
	}
	for _, e := range r.Exemptions {
		if !slices.Contains(Exemptions, e) {
			bad("unknown exemption %q: want encrypted, neutralised or disproportionate", e)
		}
	}
	if len(r.Exemptions) > 0 && r.Limit.Record {
		bad("a register obligation has nothing to be exempted from")
	}
	if (r.Starts == HighRisk) != (w.Risk == RiskHigh) {
		bad("a clock starts at the high-risk finding exactly when it applies to high risk only")
	}
	var err error
	if r.effective, err = optionalDate(r.Effective); err != nil {
		bad("effective: %v", err)
	}
	if r.stop, err = optionalDate(r.Until); err != nil {
		bad("until: %v", err)
	}
	if !r.effective.IsZero() && !r.stop.IsZero() && !r.effective.Before(r.stop) {
		bad("effective must come before until")
	}
	if r.Reminders != nil {
		if err := r.Reminders.Validate(); err != nil {
			bad("reminders: %v", err)
		}
	}
	return p
}

func optionalDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return deadline.ParseDate(s)
}

func overlaps(a, b Rule) bool {
	aEnds := !a.stop.IsZero() && !a.stop.After(b.effective) && !b.effective.IsZero()
	bEnds := !b.stop.IsZero() && !b.stop.After(a.effective) && !a.effective.IsZero()
	return !aEnds && !bEnds
}

// inEffect reports whether this version applies to a clock started at t (the date in the
// rule's zone).
func (r *Rule) inEffect(t time.Time) bool {
	y, m, d := t.In(r.loc).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return (r.effective.IsZero() || !day.Before(r.effective)) && (r.stop.IsZero() || day.Before(r.stop))
}

// Rule returns the version of rule id in effect at t, if any.
func (t *Table) Rule(id string, at time.Time) (*Rule, bool) {
	var best *Rule
	for i := range t.Rules {
		r := &t.Rules[i]
		if r.ID == id && r.inEffect(at) && (best == nil || r.Version > best.Version) {
			best = r
		}
	}
	return best, best != nil
}
