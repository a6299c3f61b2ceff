// Package breachreport makes the report a controller sends the supervisory authority about a
// personal-data breach (GDPR Art. 33), from what the breach register holds: every Art. 33(3)
// element with what is still missing (33(4) allows the rest to follow in phases), the risk
// assessment with its rationale, and every notification clock the breach runs, with its limit,
// its status, when it was notified and the reasons for any delay.
//
// The report comes as HTML (html/template, so every entry is escaped) and as PDF (fpdf with
// the Go fonts embedded, so any name or address prints). Both are rendered from one document,
// and the same register state renders byte-identical files: asking again adds no version. Every
// version generated is kept in the export store and recorded (store.BreachReport); downloads go
// through signed, expiring links (internal/links).
package breachreport

import (
	"fmt"
	"time"

	"github.com/lethe-privacy/lethe/internal/store"
)

// Formats a report is rendered in.
const (
	FormatHTML = "html"
	FormatPDF  = "pdf"
)

// Formats lists them, for flags and errors.
var Formats = []string{FormatHTML, FormatPDF}

// MediaType returns the HTTP content type of a format.
func MediaType(format string) string {
	if format == FormatHTML {
		return "text/html; charset=utf-8"
	}
	return "application/pdf"
}

// notGiven is what the report says in place of an element the content does not give yet.
const notGiven = "MISSING: not provided yet"

// document is what a report says, in the words both formats print.
type document struct {
	BreachID, Title, Status string
	AwareAt, DeterminedAt   string
	Opened                  string // when and by whom
	RegisterAt              string
	// Content is the version shown ("version 3, recorded ... by ..."), or that none exists.
	Content  string
	Version  int
	Elements []element
	Missing  []string // labels of the elements still missing
	ToFollow string
	Risk     *assessment
	Earlier  []assessment // previous assessments, newest first
	Clocks   []clock
}

type element struct {
	Point, Name, Value string
	Missing            bool
}

type assessment struct {
	Risk, Rationale, By string
}

type clock struct {
	Regime, Notify, Limit, Source string
	Starts, Due, Status           string
	Notified, Reference           string
	Late                          bool
	LateReasons                   string
	Exemption                     string // the Art. 34(3) ground and why it holds, in words
	Overdue                       bool   // past its limit with nobody notified
}

var riskWords = map[string]string{
	"none": "no risk to the rights and freedoms of natural persons",
	"risk": "a risk to the rights and freedoms of natural persons",
	"high": "a high risk to the rights and freedoms of natural persons (Art. 34: the people affected are told)",
}

var statusWords = map[string]string{
	"waiting":       "waiting for its starting event",
	"running":       "running, not notified yet",
	"escalated":     "past its limit, NOT NOTIFIED",
	"notified":      "notified in time",
	"notified_late": "notified after the limit",
	"documented":    "documented in the register (nothing to notify)",
	"withdrawn":     "no longer applies",
	"exempt":        "not told individually (Art. 34(3))",
}

var exemptionWords = map[string]string{
	"encrypted":        "Art. 34(3)(a): the data was unintelligible to anyone not authorised to see it",
	"neutralised":      "Art. 34(3)(b): later measures ensure the high risk is no longer likely",
	"disproportionate": "Art. 34(3)(c): telling each person would be disproportionate; a public communication instead",
}

func when(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") }

func whenPtr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return when(*t)
}

func orWord(m map[string]string, k string) string {
	if w, ok := m[k]; ok {
		return w
	}
	return k
}

// newDocument reads the register's record of a breach.
func newDocument(rec store.BreachRecord) document {
	d := document{
		BreachID: rec.ID, Title: rec.Title, Status: rec.Status,
		AwareAt:      when(rec.AwareAt),
		DeterminedAt: whenPtr(rec.DeterminedAt, "not recorded (the time of awareness counts)"),
		Opened:       when(rec.OpenedAt) + " by " + rec.OpenedBy,
		RegisterAt:   when(rec.UpdatedAt),
		Content:      "none recorded yet",
	}
	var content store.Art33
	if n := len(rec.Contents); n > 0 {
		c := rec.Contents[n-1]
		content, d.Version = c.Art33, c.Version
		d.Content = fmt.Sprintf("version %d, recorded %s by %s", c.Version, when(c.RecordedAt), c.RecordedBy)
	}
	for _, e := range content.Elements() {
		v := e.Value
		if !e.Given() {
			v = notGiven
			d.Missing = append(d.Missing, e.Label())
		}
		d.Elements = append(d.Elements, element{Point: "(" + e.Point + ")", Name: e.Name, Value: v, Missing: !e.Given()})
	}
	d.ToFollow = content.ToFollow
	for i := len(rec.Assessments) - 1; i >= 0; i-- {
		a := rec.Assessments[i]
		v := assessment{Risk: orWord(riskWords, a.Risk), Rationale: a.Rationale, By: a.AssessedBy + ", " + when(a.AssessedAt)}
		if d.Risk == nil {
			d.Risk = &v
		} else {
			d.Earlier = append(d.Earlier, v)
		}
	}
	notices := map[string]store.BreachNotification{}
	for _, n := range rec.Notifications {
		notices[n.RuleID] = n
	}
	for _, c := range rec.Clocks {
		v := clock{Regime: c.Regime, Notify: c.Notify, Limit: c.Limit, Source: c.Source,
			Starts: c.Starts + ": " + whenPtr(c.StartedAt, "not yet"),
			Due:    whenPtr(c.DueAt, "no fixed limit"), Status: orWord(statusWords, c.Status), Notified: "not yet",
			Overdue: c.Status == "escalated"}
		if n, ok := notices[c.RuleID]; ok {
			v.Notified, v.Reference, v.Late, v.LateReasons = when(n.NotifiedAt), n.Reference, n.Late, n.LateReasons
			if n.Exemption != "" {
				v.Exemption = orWord(exemptionWords, n.Exemption) + ". " + n.ExemptionRationale
			}
		}
		d.Clocks = append(d.Clocks, v)
	}
	return d
}
