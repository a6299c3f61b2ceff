package breachreport_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/breachreport"
	"github.com/lethe-privacy/lethe/internal/store"
)

// notGiven is what a report says in place of a missing element.
const notGiven = "MISSING: not provided yet"

var (
	aware  = time.Date(2026, 3, 6, 16, 0, 0, 0, time.UTC)
	opened = aware.Add(5 * time.Hour)
)

func ptr[T any](v T) *T { return &v }

// completeBreach gives every Art. 33(3) element, has been assessed twice and notified the
// authority late, with the reasons.
func completeBreach() store.BreachRecord {
	due := aware.Add(72 * time.Hour)
	notified := due.Add(26 * time.Hour)
	return store.BreachRecord{
		BreachRow: store.BreachRow{ID: "br-complete", TenantID: "salon", Title: "Stolen laptop of the Köln branch", Status: "open",
			AwareAt: aware, OpenedBy: "dpo@salon.example", OpenedAt: opened, UpdatedAt: notified},
		Contents: []store.BreachContent{
			{BreachID: "br-complete", Version: 1, Art33: store.Art33{Nature: "Laptop stolen"}, RecordedBy: "dpo", RecordedAt: opened},
			{BreachID: "br-complete", Version: 2, Art33: store.Art33{
				Nature:            "A laptop holding the booking database export was stolen from a car; the disk was not encrypted.",
				SubjectCategories: []string{"customers", "staff"}, SubjectsApprox: ptr(int64(1200)),
				RecordCategories: []string{"contact details", "consultation notes"}, RecordsApprox: ptr(int64(5400)),
				ContactPoint: "Dr. Jörg Weiß, DPO, dpo@salon.example, +49 30 1234567",
				Consequences: "Consultation notes may reveal health conditions; phishing with booking details.",
				Measures:     "Accounts locked, police report filed, affected customers told by email.",
			}, RecordedBy: "dpo", RecordedAt: opened.Add(24 * time.Hour)},
		},
		Assessments: []store.BreachAssessment{
			{BreachID: "br-complete", Seq: 1, Risk: "risk", Rationale: "Contact details only, as first known.", AssessedBy: "dpo", AssessedAt: opened},
			{BreachID: "br-complete", Seq: 2, Risk: "high", Rationale: "Consultation notes are health data (Art. 9).", AssessedBy: "dpo", AssessedAt: opened.Add(24 * time.Hour)},
		},
		Clocks: []store.BreachClock{{BreachID: "br-complete", RuleID: "gdpr-art33-authority", RuleVersion: 1, Regime: "EU GDPR",
			Notify: "supervisory authority", Kind: "deadline", Starts: "awareness", StartedAt: &aware, DueAt: &due, Limit: "72 hours",
			Source: "GDPR Art. 33(1)", Status: "notified_late", UpdatedAt: notified},
			{BreachID: "br-complete", RuleID: "gdpr-art34-subjects", RuleVersion: 1, Regime: "EU GDPR", Notify: "data subjects", Kind: "open",
				Starts: "high_risk", StartedAt: &aware, Limit: "without undue delay", Source: "GDPR Art. 34", Status: "exempt", UpdatedAt: notified}},
		Notifications: []store.BreachNotification{{BreachID: "br-complete", RuleID: "gdpr-art33-authority", NotifiedAt: notified,
			Reference: "LDI-2026-0042", Late: true, LateReasons: "The extent was only known once the backup was restored.", RecordedBy: "dpo", RecordedAt: notified},
			{BreachID: "br-complete", RuleID: "gdpr-art34-subjects", NotifiedAt: notified, Exemption: "neutralised",
				ExemptionRationale: "The laptop was recovered unopened and wiped.", RecordedBy: "dpo", RecordedAt: notified}},
	}
}

// incompleteBreach has only its nature and a contact point, no assessment, and a clock running.
func incompleteBreach() store.BreachRecord {
	due := aware.Add(72 * time.Hour)
	return store.BreachRecord{
		BreachRow: store.BreachRow{ID: "br-partial", TenantID: "salon", Title: "Mail sent to the wrong list", Status: "open",
			AwareAt: aware, OpenedBy: "support", OpenedAt: opened, UpdatedAt: opened},
		Contents: []store.BreachContent{{BreachID: "br-partial", Version: 1, Art33: store.Art33{
			Nature: "Newsletter <script>alert(1)</script> sent with every address visible", ContactPoint: "privacy@salon.example",
			ToFollow: "Number of recipients still being counted."}, RecordedBy: "support", RecordedAt: opened}},
		Clocks: []store.BreachClock{{BreachID: "br-partial", RuleID: "gdpr-art33-authority", RuleVersion: 1, Regime: "EU GDPR",
			Notify: "supervisory authority", Kind: "deadline", Starts: "awareness", StartedAt: &aware, DueAt: &due, Limit: "72 hours",
			Source: "GDPR Art. 33(1)", Status: "running", UpdatedAt: opened},
			{BreachID: "br-partial", RuleID: "uk-gdpr-art33-authority", RuleVersion: 1, Regime: "UK GDPR", Notify: "the ICO",
				Kind: "deadline", Starts: "awareness", StartedAt: &aware, DueAt: &due, Limit: "72 hours", Source: "UK GDPR Art. 33(1)",
				Status: "escalated", UpdatedAt: opened}},
	}
}

// htmlText strips the tags and folds whitespace, so phrases can be searched across lines.
func htmlText(doc []byte) string {
	s := regexp.MustCompile(`(?s)<style>.*?</style>|<[^>]+>`).ReplaceAllString(string(doc), " ")
	return strings.Join(strings.Fields(s), " ")
}

// The report names every Art. 33(3) element with what the content says, the risk assessment
// with its rationale, and each clock with its limit, status, notification and the reasons for
// the delay; for a complete breach nothing is flagged missing.
func TestReportCompleteBreach(t *testing.T) {
	rec := completeBreach()
	for _, format := range breachreport.Formats {
		t.Run(format, func(t *testing.T) {
			doc, err := breachreport.Render(rec, format)
			require.NoError(t, err)
			text := textOf(t, format, doc)
			for _, want := range []string{
				"(a) nature of the breach", "disk was not encrypted",
				"(a) categories of data subjects", "customers, staff",
				"(a) approximate number of data subjects", "about 1200",
				"(a) categories of personal data records", "contact details, consultation notes",
				"(a) approximate number of personal data records", "about 5400",
				"(b) contact point", "Dr. Jörg Weiß",
				"(c) likely consequences", "may reveal health conditions",
				"(d) measures taken or proposed", "police report filed",
				"Every Art. 33(3) element is given.", "content version 2",
				"a high risk to the rights and freedoms", "Consultation notes are health data (Art. 9).",
				"Contact details only, as first known.",
				"EU GDPR", "72 hours", "due 9 March 2026, 16:00 UTC", "notified after the limit",
				"10 March 2026, 18:00 UTC", "LDI-2026-0042", "Reasons for the delay", "only known once the backup was restored",
				"Stolen laptop of the Köln branch",
				"not told individually (Art. 34(3))", "Art. 34(3)(b): later measures ensure the high risk is no longer likely",
				"recovered unopened and wiped",
			} {
				assert.Contains(t, text, want)
			}
			assert.NotContains(t, text, notGiven)
			assert.NotContains(t, text, "Still missing")
		})
	}
}

// An incomplete breach's report flags each element still missing, by name and point, and says
// it is not assessed; what was entered is escaped in the HTML, never markup.
func TestReportIncompleteBreach(t *testing.T) {
	rec := incompleteBreach()
	for _, format := range breachreport.Formats {
		t.Run(format, func(t *testing.T) {
			doc, err := breachreport.Render(rec, format)
			require.NoError(t, err)
			text := textOf(t, format, doc)
			assert.Contains(t, text, "Still missing (6 of 8):")
			for _, want := range []string{
				"categories of data subjects (33(3)(a))", "approximate number of data subjects (33(3)(a))",
				"categories of personal data records (33(3)(a))", "approximate number of personal data records (33(3)(a))",
				"likely consequences (33(3)(c))", "measures taken or proposed (33(3)(d))",
			} {
				assert.Contains(t, text, want, "the missing element is named")
			}
			assert.NotContains(t, text, "nature of the breach (33(3)(a))", "a given element is not flagged")
			assert.NotContains(t, text, "contact point (33(3)(b))")
			assert.Equal(t, 6, strings.Count(text, notGiven), "each missing element is marked where its value would be")
			for _, want := range []string{"privacy@salon.example", "Number of recipients still being counted.", "Not assessed yet.",
				"running, not notified yet", "Notified not yet", "UK GDPR", "past its limit, NOT NOTIFIED"} {
				assert.Contains(t, text, want)
			}
			if format == breachreport.FormatHTML {
				assert.NotContains(t, string(doc), "<script>", "entries are escaped")
				assert.Contains(t, string(doc), "&lt;script&gt;")
			}
		})
	}
}

// The same register state renders the same bytes, so a report asked for twice is one version.
func TestReportDeterministic(t *testing.T) {
	for _, format := range breachreport.Formats {
		a, err := breachreport.Render(completeBreach(), format)
		require.NoError(t, err)
		b, err := breachreport.Render(completeBreach(), format)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), "%s renders the same bytes twice", format)
	}
	_, err := breachreport.Render(completeBreach(), "docx")
	assert.ErrorContains(t, err, "format must be one of html, pdf")
}

func textOf(t *testing.T, format string, doc []byte) string {
	if dir := os.Getenv("LETHE_REPORT_SAMPLES"); dir != "" { // for looking at the documents by eye
		require.NoError(t, os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "-")+"."+format), doc, 0o644))
	}
	if format == breachreport.FormatPDF {
		assert.True(t, bytes.HasPrefix(doc, []byte("%PDF-")))
		return pdfText(t, doc)
	}
	return htmlText(doc)
}

// An entry with characters the PDF fonts cannot hold (emoji) still renders, with a stand-in
// for them; the HTML keeps them as entered.
func TestReportAnyCharacter(t *testing.T) {
	rec := incompleteBreach()
	rec.Title = "Leak 😀 of the 𝔘 list"
	for _, format := range breachreport.Formats {
		doc, err := breachreport.Render(rec, format)
		require.NoError(t, err, format)
		assert.Contains(t, textOf(t, format, doc), "of the", format)
	}
	doc, _ := breachreport.Render(rec, breachreport.FormatHTML)
	assert.Contains(t, string(doc), "Leak 😀 of the 𝔘 list")
}
