// Package deadline computes when a data-subject request must be answered.
//
// It is pure and deterministic (no clock, no I/O, no shared mutable state), so workflows may call
// it directly: the same inputs always give the same date.
//
// # Dates and time zones
//
// Deadlines run on civil dates, not instants. Due reads the date of receipt in the location of
// the time it is given, so callers pass the moment of receipt converted to the tenant's time
// zone (received.In(tenantLoc)): a request that reaches a Berlin salon at 00:30 on 15 March
// counts from 15 March even though it is still 14 March in UTC. Results are midnight at the
// start of the due date in that same location; the request is in time if answered before the
// end of that day, i.e. before OverdueAt(due).
//
// # GDPR
//
// Art. 12(3) GDPR gives "one month of receipt", counted under Regulation (EEC, Euratom) No
// 1182/71: the day of receipt is not counted (Art. 3(1)); a period in months ends on the same
// date in the last month, or on that month's last day if the date does not exist (Art. 3(2)(c));
// a period ending on a Saturday, Sunday or public holiday ends on the next working day (Art.
// 3(4)). Public holidays are those of the tenant's country (see ParseCountry); with no country,
// only weekends move the date.
//
// The extension by "two further months" is a second period running on from the end of the
// first. Lethe adds the two months to the end of the first period before it was moved to a
// working day (31 Jan → 28 Feb → 28 Apr), then applies the month-end and working-day rules
// once. Of the readings in use this gives the earliest date: never later than counting three
// months from receipt (which would give 30 Apr) or two months from a first due date already
// moved past a weekend. A deadline tool must not tell a controller it has more time than the
// law may give, so the earliest defensible reading wins.
//
// # CCPA
//
// Cal. Civ. Code § 1798.130(a)(2) gives 45 days, extendable once by 45 more (90 in total) with
// notice, and the CCPA regulations define days as calendar days. The due date is therefore
// never moved off a weekend or holiday: a CCPA due date can be a Sunday. A country, if given,
// is checked but does not change the result.
package deadline

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Regime is the law whose deadline applies.
type Regime string

const (
	GDPR Regime = "gdpr" // GDPR and UK GDPR: one month, extendable by two
	CCPA Regime = "ccpa" // CCPA/CPRA: 45 days, extendable by 45
)

// ParseRegime accepts "gdpr" or "ccpa" in any case.
func ParseRegime(s string) (Regime, error) {
	switch r := Regime(strings.ToLower(strings.TrimSpace(s))); r {
	case GDPR, CCPA:
		return r, nil
	}
	return "", fmt.Errorf("unknown regime %q: want gdpr or ccpa", s)
}

// Rule is what decides a tenant's deadlines.
type Rule struct {
	Regime  Regime
	Country string // ISO 3166-1 alpha-2 code for public holidays; "" for weekends only
}

// ParseRule builds a Rule from user input, normalising both parts.
func ParseRule(regime, country string) (Rule, error) {
	r, err := ParseRegime(regime)
	if err != nil {
		return Rule{}, err
	}
	c, err := ParseCountry(country)
	if err != nil {
		return Rule{}, err
	}
	return Rule{Regime: r, Country: c}, nil
}

// Validate reports whether Due can use the rule as it is (no normalising).
func (r Rule) Validate() error {
	if r.Regime != GDPR && r.Regime != CCPA {
		return fmt.Errorf("unknown regime %q: want gdpr or ccpa", r.Regime)
	}
	if r.Country == "" {
		return nil
	}
	c, err := ParseCountry(r.Country)
	if err != nil {
		return err
	}
	if c != r.Country {
		return fmt.Errorf("country %q must be given as %q", r.Country, c)
	}
	return nil
}

// DateLayout is how Lethe writes and reads civil dates.
const DateLayout = time.DateOnly

// ParseDate reads a YYYY-MM-DD date as midnight UTC.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid date %q: want YYYY-MM-DD, e.g. 2026-03-14", s)
	}
	return t, nil
}

// Deadline is a due date with how it was reached.
type Deadline struct {
	Received time.Time // the date of receipt (midnight)
	Period   string    // the legal period counted, e.g. "1 month", "3 months", "45 days"
	End      time.Time // where that period ends, before any move to a working day
	Due      time.Time // the last day on which an answer is in time
	Skipped  []Skip    // the days from End up to Due that are not working days, in order
}

// Skip is a day the due date was moved past.
type Skip struct {
	Date   time.Time
	Reason string // e.g. "Saturday", "public holiday (Erster Weihnachtstag)"
}

// Rolled reports whether the period's end was moved to a later working day.
func (d Deadline) Rolled() bool { return len(d.Skipped) > 0 }

// Explain says in one line why Due differs from End, or "" when it does not.
func (d Deadline) Explain() string {
	if !d.Rolled() {
		return ""
	}
	parts := make([]string, len(d.Skipped))
	for i, s := range d.Skipped {
		parts[i] = s.Date.Format("Mon 2006-01-02") + " " + s.Reason
	}
	return fmt.Sprintf("%s from receipt ends %s; moved to the next working day past %s",
		d.Period, d.End.Format(DateLayout), strings.Join(parts, ", "))
}

// Due returns the due date of a request received at received under rule r, with the extension
// if extended. See the package documentation for the rules.
func Due(received time.Time, r Rule, extended bool) (time.Time, error) {
	d, err := Compute(received, r, extended)
	return d.Due, err
}

// maxRoll bounds the search for a working day; real calendars never come near it.
const maxRoll = 31

// Compute is Due with the explanation.
func Compute(received time.Time, r Rule, extended bool) (Deadline, error) {
	if err := r.Validate(); err != nil {
		return Deadline{}, err
	}
	if received.IsZero() {
		return Deadline{}, errors.New("no date of receipt")
	}
	y, m, d := received.Date()
	loc := received.Location()
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, loc) }
	dl := Deadline{Received: day(y, m, d)}

	switch r.Regime {
	case CCPA:
		days := 45
		if extended {
			days = 90
		}
		dl.Period = fmt.Sprintf("%d days", days)
		dl.End = day(y, m, d+days)
		dl.Due = dl.End
		return dl, nil
	}

	ey, em, ed := addMonths(y, m, d, 1)
	dl.Period = "1 month"
	if extended {
		ey, em, ed = addMonths(ey, em, ed, 2)
		dl.Period = "3 months"
	}
	dl.End = day(ey, em, ed)
	due := dl.End
	for range maxRoll {
		reason, off := dayOff(r.Country, due)
		if !off {
			dl.Due = due
			return dl, nil
		}
		dl.Skipped = append(dl.Skipped, Skip{Date: due, Reason: reason})
		due = day(due.Year(), due.Month(), due.Day()+1)
	}
	return Deadline{}, fmt.Errorf("no working day within %d days of %s in %s", maxRoll, dl.End.Format(DateLayout), r.Country)
}

// AddWorkingDays returns the civil date n working days after the date of from (in from's
// location), the day of from itself not counted; working days exclude weekends and the public
// holidays of country ("" for weekends only). The result is midnight at the start of that day,
// with the days passed over.
func AddWorkingDays(from time.Time, n int, country string) (time.Time, []Skip, error) {
	if c, err := ParseCountry(country); err != nil {
		return time.Time{}, nil, fmt.Errorf("counting working days: %w", err)
	} else if c != country {
		return time.Time{}, nil, fmt.Errorf("counting working days: country %q must be given as %q", country, c)
	}
	y, m, d := from.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, from.Location())
	var skipped []Skip
	for counted := 0; counted < n; {
		day = day.AddDate(0, 0, 1)
		if reason, off := dayOff(country, day); off {
			skipped = append(skipped, Skip{Date: day, Reason: reason})
			if len(skipped) > n+maxRoll*(n/5+1) {
				return time.Time{}, nil, fmt.Errorf("no %d working days after %s in %s", n, from.Format(DateLayout), country)
			}
			continue
		}
		counted++
	}
	return day, skipped, nil
}

// AddMonths returns the civil date n months after the date of from, keeping the day of month or
// taking the last day of a shorter month, at midnight in from's location.
func AddMonths(from time.Time, n int) time.Time {
	y, m, d := addMonths(from.Year(), from.Month(), from.Day(), n)
	return time.Date(y, m, d, 0, 0, 0, 0, from.Location())
}

// addMonths moves a civil date n months on, keeping the day of month or, where that month is
// shorter, taking its last day (31 Jan + 1 month = 28 or 29 Feb, not 3 Mar as time.AddDate gives).
func addMonths(y int, m time.Month, d, n int) (int, time.Month, int) {
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.Year(), first.Month(), min(d, last)
}

func dayOff(country string, t time.Time) (string, bool) {
	y, m, d := t.Date()
	if name, ok := holiday(country, y, m, d); ok {
		return "public holiday (" + name + ")", true
	}
	switch wd := t.Weekday(); wd {
	case time.Saturday, time.Sunday:
		return wd.String(), true
	}
	return "", false
}

// OverdueAt is the first moment a request with this due date is late: the start of the next day
// in the due date's location.
func OverdueAt(due time.Time) time.Time {
	y, m, d := due.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, due.Location())
}

// Reminders returns when to remind staff: one time per offset before due, earliest first, with
// duplicates dropped. Offsets that are whole days count calendar days, so a reminder keeps its
// wall-clock time across a daylight-saving change; other offsets are exact durations. A negative
// offset gives a time after due (an escalation).
func Reminders(due time.Time, offsets []time.Duration) []time.Time {
	out := make([]time.Time, 0, len(offsets))
	for _, off := range offsets {
		var t time.Time
		if off%(24*time.Hour) == 0 {
			t = due.AddDate(0, 0, -int(off/(24*time.Hour)))
		} else {
			t = due.Add(-off)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
}

// DefaultReminders are the reminder offsets Lethe uses unless a tenant sets its own.
func DefaultReminders() []time.Duration {
	return []time.Duration{7 * 24 * time.Hour, 2 * 24 * time.Hour}
}
