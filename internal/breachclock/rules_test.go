package breachclock

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

func in(pairs ...any) []Residents {
	var out []Residents
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Residents{Jurisdiction: pairs[i].(string), Count: pairs[i+1].(int)})
	}
	return out
}

// One worked example per rule version in rules.yaml, each naming the source it follows. The
// table's coverage is checked at the end: a rule added without an example fails here.
func TestWorkedExamples(t *testing.T) {
	tbl := Builtin()
	type example struct {
		name    string
		rule    string
		version int
		source  string // must appear in the rule's source
		facts   func(t *testing.T) Facts
		kind    Kind
		started string // RFC 3339; "" for a record
		due     string // RFC 3339: the first late instant (an open clock's target)
		skipped []string
	}
	de := func(aware string) func(t *testing.T) Facts {
		return func(t *testing.T) Facts { return Facts{Establishment: "DE", AwareAt: at(t, aware)} }
	}
	us := func(j string, n int, aware, determined string) func(t *testing.T) Facts {
		return func(t *testing.T) Facts {
			f := Facts{Establishment: "US-NV", Affected: in(j, n), AwareAt: at(t, aware)}
			if determined != "" {
				f.DeterminedAt = at(t, determined)
			}
			return f
		}
	}
	examples := []example{
		{"72 hours over a weekend, no roll", "gdpr-art33-authority", 1, "GDPR Art. 33(1)", de("2026-03-06T16:00:00Z"),
			Deadline, "2026-03-06T16:00:00Z", "2026-03-09T16:00:00Z", nil},
		{"every breach is documented, even one assessed as no risk", "gdpr-art33-register", 1, "GDPR Art. 33(5)",
			func(t *testing.T) Facts {
				return Facts{Establishment: "FR", Risk: RiskNone, AwareAt: at(t, "2026-03-06T16:00:00Z")}
			}, Record, "", "", nil},
		{"data subjects after the high-risk finding, target 72 hours", "gdpr-art34-subjects", 1, "GDPR Art. 34",
			func(t *testing.T) Facts {
				return Facts{Establishment: "DE", Risk: RiskHigh, AwareAt: at(t, "2026-03-06T16:00:00Z"), HighRiskAt: at(t, "2026-03-07T10:00:00Z")}
			}, Open, "2026-03-07T10:00:00Z", "2026-03-10T10:00:00Z", nil},
		{"ICO 72 hours over Christmas, no roll", "uk-gdpr-art33-ico", 1, "UK GDPR Art. 33(1)",
			func(t *testing.T) Facts { return Facts{Establishment: "GB", AwareAt: at(t, "2026-12-24T12:00:00Z")} },
			Deadline, "2026-12-24T12:00:00Z", "2026-12-27T12:00:00Z", nil},
		{"UK residents of a US tenant, high risk", "uk-gdpr-art34-subjects", 1, "UK GDPR Art. 34(1)",
			func(t *testing.T) Facts {
				return Facts{Establishment: "US-NV", Affected: in("GB", 10), Risk: RiskHigh, AwareAt: at(t, "2026-05-01T08:00:00Z"), HighRiskAt: at(t, "2026-05-02T08:00:00Z")}
			}, Open, "2026-05-02T08:00:00Z", "2026-05-05T08:00:00Z", nil},
		{"ANPD: 3 business days across Black Consciousness Day and a weekend", "lgpd-anpd", 1, "Resolution CD/ANPD 15/2024",
			func(t *testing.T) Facts {
				return Facts{Establishment: "BR", AwareAt: at(t, "2026-11-19T15:00:00-03:00")}
			},
			Deadline, "2026-11-19T18:00:00Z", "2026-11-26T00:00:00-03:00",
			[]string{"Fri 2026-11-20 public holiday (Dia Nacional de Zumbi e da Consciência Negra)", "Sat 2026-11-21 Saturday", "Sun 2026-11-22 Sunday"}},
		{"ANPD, small processing agent: 6 business days across Tiradentes", "lgpd-anpd-small-agent", 1, "Resolution CD/ANPD 2/2022",
			func(t *testing.T) Facts {
				return Facts{Establishment: "BR", SmallAgent: true, AwareAt: at(t, "2026-04-20T10:00:00-03:00")}
			}, Deadline, "2026-04-20T13:00:00Z", "2026-04-30T00:00:00-03:00",
			[]string{"Tue 2026-04-21 public holiday (Tiradentes)", "Sat 2026-04-25 Saturday", "Sun 2026-04-26 Sunday"}},
		{"data subjects in Brazil: 3 business days across Good Friday", "lgpd-subjects", 1, "Resolution CD/ANPD 15/2024 Art. 9",
			func(t *testing.T) Facts {
				return Facts{Establishment: "PT", Affected: in("BR", 40), AwareAt: at(t, "2026-04-02T12:00:00-03:00")}
			}, Deadline, "2026-04-02T15:00:00Z", "2026-04-09T00:00:00-03:00",
			[]string{"Fri 2026-04-03 public holiday (Sexta-feira Santa)", "Sat 2026-04-04 Saturday", "Sun 2026-04-05 Sunday"}},
		{"data subjects, small agent: 6 business days across Christmas and New Year", "lgpd-subjects-small-agent", 1, "Resolution CD/ANPD 2/2022",
			func(t *testing.T) Facts {
				return Facts{Establishment: "BR", SmallAgent: true, AwareAt: at(t, "2026-12-23T09:00:00-03:00")}
			}, Deadline, "2026-12-23T12:00:00Z", "2027-01-05T00:00:00-03:00", nil},
		{"supplementary information: 20 business days from the ANPD notification", "lgpd-anpd-supplement", 1, "Art. 6 §3",
			func(t *testing.T) Facts {
				return Facts{Establishment: "BR", AwareAt: at(t, "2026-11-19T15:00:00-03:00"),
					Notified: []Notice{{Rule: "lgpd-anpd", At: at(t, "2026-11-24T14:00:00-03:00")}}}
			}, Deadline, "2026-11-24T17:00:00Z", "2026-12-23T00:00:00-03:00", nil},
		{"California before SB 446: most expedient time possible", "ca-residents", 1, "before SB 446",
			us("US-CA", 3, "2025-12-15T18:00:00Z", ""), Open, "2025-12-15T18:00:00Z", "2026-01-14T18:00:00Z", nil},
		{"California from 2026: 30 calendar days", "ca-residents", 2, "SB 446",
			us("US-CA", 3, "2026-03-02T09:00:00Z", ""), Deadline, "2026-03-02T09:00:00Z", "2026-04-02T00:00:00-07:00", nil},
		{"California AG: sample copy 15 days after notifying more than 500", "ca-attorney-general", 1, "§1798.82(f)",
			func(t *testing.T) Facts {
				f := us("US-CA", 501, "2026-03-02T09:00:00Z", "")(t)
				f.Notified = []Notice{{Rule: "ca-residents", At: at(t, "2026-03-20T18:00:00Z")}}
				return f
			}, Deadline, "2026-03-20T18:00:00Z", "2026-04-05T00:00:00-07:00", nil},
		{"Texas residents: 60 days from determination, not awareness", "tx-residents", 1, "§521.053(b)",
			us("US-TX", 10, "2026-05-01T15:00:00Z", "2026-05-04T15:00:00Z"), Deadline, "2026-05-04T15:00:00Z", "2026-07-04T00:00:00-05:00", nil},
		{"Texas AG: 30 days at 250 Texans", "tx-attorney-general", 1, "§521.053(i)",
			us("US-TX", 250, "2026-05-01T15:00:00Z", "2026-05-04T15:00:00Z"), Deadline, "2026-05-04T15:00:00Z", "2026-06-04T00:00:00-05:00", nil},
		{"Florida residents: 30 days", "fl-residents", 1, "§501.171(4)",
			us("US-FL", 1, "2026-01-10T12:00:00Z", ""), Deadline, "2026-01-10T12:00:00Z", "2026-02-10T00:00:00-05:00", nil},
		{"Florida AG: 30 days at 500", "fl-attorney-general", 1, "§501.171(3)",
			us("US-FL", 500, "2026-01-10T12:00:00Z", ""), Deadline, "2026-01-10T12:00:00Z", "2026-02-10T00:00:00-05:00", nil},
		{"Colorado residents: 30 days", "co-residents", 1, "§6-1-716(2)",
			us("US-CO", 1, "2026-06-01T18:00:00Z", ""), Deadline, "2026-06-01T18:00:00Z", "2026-07-02T00:00:00-06:00", nil},
		{"Colorado AG: 30 days at 500", "co-attorney-general", 1, "§6-1-716(2)(f)",
			us("US-CO", 500, "2026-06-01T18:00:00Z", ""), Deadline, "2026-06-01T18:00:00Z", "2026-07-02T00:00:00-06:00", nil},
		{"Washington residents: 30 days", "wa-residents", 1, "RCW 19.255.010(8)",
			us("US-WA", 1, "2026-02-01T20:00:00Z", ""), Deadline, "2026-02-01T20:00:00Z", "2026-03-04T00:00:00-08:00", nil},
		{"Washington AG: more than 500", "wa-attorney-general", 1, "RCW 19.255.010(7)",
			us("US-WA", 501, "2026-02-01T20:00:00Z", ""), Deadline, "2026-02-01T20:00:00Z", "2026-03-04T00:00:00-08:00", nil},
		{"New York residents: 30 days across the end of summer time", "ny-residents", 1, "§899-aa(2)",
			us("US-NY", 1, "2026-10-15T16:00:00Z", ""), Deadline, "2026-10-15T16:00:00Z", "2026-11-15T00:00:00-05:00", nil},
		{"New York AG: any New Yorker", "ny-attorney-general", 1, "§899-aa(8)",
			us("US-NY", 1, "2026-10-15T16:00:00Z", ""), Deadline, "2026-10-15T16:00:00Z", "2026-11-15T00:00:00-05:00", nil},
		{"Alabama: 45 days", "al-residents", 1, "§8-38-5",
			us("US-AL", 1, "2026-03-02T15:00:00Z", ""), Deadline, "2026-03-02T15:00:00Z", "2026-04-17T00:00:00-05:00", nil},
		{"Arizona: 45 days, no summer time", "az-residents", 1, "§18-552",
			us("US-AZ", 1, "2026-03-02T15:00:00Z", ""), Deadline, "2026-03-02T15:00:00Z", "2026-04-17T00:00:00-07:00", nil},
		{"Delaware: 60 days", "de-residents", 1, "§12B-102",
			us("US-DE", 1, "2026-03-02T15:00:00Z", ""), Deadline, "2026-03-02T15:00:00Z", "2026-05-02T00:00:00-04:00", nil},
		{"Vermont preliminary notice: 14 days", "vt-preliminary-notice", 1, "9 V.S.A. §2435(b)(3)",
			us("US-VT", 1, "2026-03-02T15:00:00Z", ""), Deadline, "2026-03-02T15:00:00Z", "2026-03-17T00:00:00-04:00", nil},
		{"Puerto Rico preliminary notice: 10 days", "pr-preliminary-notice", 1, "Law 111",
			us("US-PR", 1, "2026-03-02T15:00:00Z", ""), Deadline, "2026-03-02T15:00:00Z", "2026-03-13T00:00:00-04:00", nil},
		{"HIPAA individuals: 60 days", "hipaa-individuals", 1, "164.404",
			func(t *testing.T) Facts {
				return Facts{Establishment: "US-NV", HIPAA: true, Affected: in("US-CA", 3), AwareAt: at(t, "2026-03-02T15:00:00Z")}
			}, Deadline, "2026-03-02T15:00:00Z", "2026-05-02T00:00:00-04:00", nil},
		{"HIPAA HHS: 500 across states", "hipaa-hhs", 1, "164.408",
			func(t *testing.T) Facts {
				return Facts{Establishment: "US-NV", HIPAA: true, Affected: in("US-CA", 300, "US-NY", 200), AwareAt: at(t, "2026-03-02T15:00:00Z")}
			}, Deadline, "2026-03-02T15:00:00Z", "2026-05-02T00:00:00-04:00", nil},
		{"HIPAA annual log: fewer than 500, 60 days after the year of discovery ends", "hipaa-hhs-annual-log", 1, "164.408(c)",
			func(t *testing.T) Facts {
				return Facts{Establishment: "US-NV", HIPAA: true, Affected: in("US-CA", 3), AwareAt: at(t, "2026-06-10T15:00:00Z")}
			}, Deadline, "2026-06-10T15:00:00Z", "2027-03-02T00:00:00-05:00", nil},
		{"HIPAA annual log: the 60 days end on 29 February in a leap year", "hipaa-hhs-annual-log", 1, "164.408(c)",
			func(t *testing.T) Facts {
				return Facts{Establishment: "US-NV", HIPAA: true, Affected: in("US-TX", 499), AwareAt: at(t, "2027-11-05T15:00:00Z")}
			}, Deadline, "2027-11-05T15:00:00Z", "2028-03-01T00:00:00-05:00", nil},
		{"HIPAA media: more than 500 in one state", "hipaa-media", 1, "164.406",
			func(t *testing.T) Facts {
				return Facts{Establishment: "US-NV", HIPAA: true, Affected: in("US-TX", 501), AwareAt: at(t, "2026-03-02T15:00:00Z")}
			}, Deadline, "2026-03-02T15:00:00Z", "2026-05-02T00:00:00-04:00", nil},
		{"SEC 8-K: 4 business days across Thanksgiving and a weekend", "sec-8k-item-105", 1, "SEC Release 33-11216",
			func(t *testing.T) Facts {
				return Facts{Establishment: "US-DE", Listed: true, AwareAt: at(t, "2026-11-20T15:00:00Z"), MaterialAt: at(t, "2026-11-25T20:00:00Z")}
			}, Deadline, "2026-11-25T20:00:00Z", "2026-12-03T00:00:00-05:00",
			[]string{"Thu 2026-11-26 public holiday (Thanksgiving Day)", "Sat 2026-11-28 Saturday", "Sun 2026-11-29 Sunday"}},
		{"PIPEDA: as soon as feasible after a real risk of significant harm", "pipeda-opc-individuals", 1, "PIPEDA s.10.1",
			func(t *testing.T) Facts {
				return Facts{Establishment: "CA", Risk: RiskHigh, AwareAt: at(t, "2026-03-02T15:00:00Z"), HighRiskAt: at(t, "2026-03-03T15:00:00Z")}
			}, Open, "2026-03-03T15:00:00Z", "2026-03-06T15:00:00Z", nil},
		{"PIPEDA: every breach recorded", "pipeda-record", 1, "PIPEDA s.10.3",
			func(t *testing.T) Facts { return Facts{Establishment: "CA", AwareAt: at(t, "2026-03-02T15:00:00Z")} },
			Record, "", "", nil},
		{"NIS2 early warning: 24 hours", "nis2-early-warning", 1, "2022/2555 Art. 23(4)(a)",
			func(t *testing.T) Facts {
				return Facts{Establishment: "DE", NIS2: true, AwareAt: at(t, "2026-03-02T09:00:00Z")}
			},
			Deadline, "2026-03-02T09:00:00Z", "2026-03-03T09:00:00Z", nil},
		{"NIS2 notification: 72 hours", "nis2-notification", 1, "2022/2555 Art. 23(4)(b)",
			func(t *testing.T) Facts {
				return Facts{Establishment: "DE", NIS2: true, AwareAt: at(t, "2026-03-02T09:00:00Z")}
			},
			Deadline, "2026-03-02T09:00:00Z", "2026-03-05T09:00:00Z", nil},
		{"NIS2 final report: one month from 31 Jan is 28 Feb", "nis2-final-report", 1, "2022/2555 Art. 23(4)(d)",
			func(t *testing.T) Facts {
				return Facts{Establishment: "DE", NIS2: true, AwareAt: at(t, "2026-01-28T09:00:00Z"),
					Notified: []Notice{{Rule: "nis2-notification", At: at(t, "2026-01-31T10:00:00Z")}}}
			}, Deadline, "2026-01-31T10:00:00Z", "2026-03-01T00:00:00+01:00", nil},
	}

	covered := map[string]bool{}
	for _, ex := range examples {
		t.Run(ex.rule+"/"+ex.name, func(t *testing.T) {
			covered[fmt.Sprintf("%s@%d", ex.rule, ex.version)] = true
			obs, err := tbl.Derive(ex.facts(t))
			require.NoError(t, err)
			var o *Obligation
			for i := range obs {
				if obs[i].Rule == ex.rule {
					o = &obs[i]
				}
			}
			require.NotNil(t, o, "%s does not apply", ex.rule)
			assert.Equal(t, ex.version, o.Version)
			assert.Contains(t, o.Source, ex.source)
			assert.Equal(t, ex.kind, o.Kind)
			assert.Empty(t, o.Waiting)
			if ex.kind == Record {
				assert.True(t, o.StartedAt.IsZero() && o.Due.IsZero())
				return
			}
			assert.True(t, at(t, ex.started).Equal(o.StartedAt), "started %s", o.StartedAt)
			assert.True(t, at(t, ex.due).Equal(o.Due), "due %s, want %s", o.Due.Format(time.RFC3339), ex.due)
			if ex.skipped != nil {
				assert.Equal(t, ex.skipped, o.Skipped)
			}
			require.Len(t, o.Reminders, 4)
			for _, r := range o.Reminders {
				assert.True(t, r.After(o.StartedAt) && r.Before(o.Due), "reminder %s", r)
			}
		})
	}
	for _, r := range tbl.Rules {
		assert.True(t, covered[fmt.Sprintf("%s@%d", r.ID, r.Version)], "rule %s version %d has no worked example", r.ID, r.Version)
	}
}

// The 72-hour clock reminds at 24, 48, 60 and 70 hours; the others in proportion.
func TestReminderOffsets(t *testing.T) {
	aware := at(t, "2026-03-06T16:00:00Z")
	obs, err := Builtin().Derive(Facts{Establishment: "DE", Affected: in("US-CA", 1), AwareAt: aware})
	require.NoError(t, err)
	require.Equal(t, "gdpr-art33-authority", obs[0].Rule)
	var hours []float64
	for _, r := range obs[0].Reminders {
		hours = append(hours, r.Sub(aware).Hours())
	}
	assert.Equal(t, []float64{24, 48, 60, 70}, hours)

	ca := obs[len(obs)-1]
	require.Equal(t, "ca-residents", ca.Rule)
	span := ca.Due.Sub(ca.StartedAt)
	assert.Equal(t, ca.StartedAt.Add(span/3).Truncate(time.Second), ca.Reminders[0])
}

// A tenant's own schedule replaces the table's default, in proportion for longer clocks.
func TestTenantReminderSchedule(t *testing.T) {
	aware := at(t, "2026-03-06T16:00:00Z")
	obs, err := Builtin().Derive(Facts{Establishment: "DE", Affected: in("US-CA", 1), AwareAt: aware,
		Reminders: &Reminders{Of: 72, At: []int{12, 36}}})
	require.NoError(t, err)
	require.Equal(t, "gdpr-art33-authority", obs[0].Rule)
	var hours []float64
	for _, r := range obs[0].Reminders {
		hours = append(hours, r.Sub(aware).Hours())
	}
	assert.Equal(t, []float64{12, 36}, hours)
	ca := obs[len(obs)-1]
	require.Equal(t, "ca-residents", ca.Rule)
	require.Len(t, ca.Reminders, 2)
	assert.Equal(t, ca.StartedAt.Add(ca.Due.Sub(ca.StartedAt)/6).Truncate(time.Second), ca.Reminders[0])

	assert.EqualError(t, Reminders{Of: 72, At: []int{80}}.Validate(), "reminder at 80 hours is not within a clock of 72 hours")
}

// What does not apply is left out, and clocks whose event has not happened wait for it.
func TestConditions(t *testing.T) {
	tbl := Builtin()
	aware := at(t, "2026-03-02T15:00:00Z")
	rules := func(f Facts) []string {
		f.AwareAt = aware
		obs, err := tbl.Derive(f)
		require.NoError(t, err)
		var out []string
		for _, o := range obs {
			s := o.Rule
			if o.Waiting != "" {
				s += " (waiting for " + o.Waiting + ")"
			}
			out = append(out, s)
		}
		return out
	}
	assert.Equal(t, []string{"gdpr-art33-authority", "gdpr-art33-register"}, rules(Facts{Establishment: "DE"}), "unassessed: notifiable")
	assert.Equal(t, []string{"gdpr-art33-register"}, rules(Facts{Establishment: "DE", Risk: RiskNone}), "no risk: documented only")
	assert.Equal(t, []string{"gdpr-art33-authority", "gdpr-art33-register", "gdpr-art34-subjects (waiting for a high-risk finding)"},
		rules(Facts{Establishment: "DE", Risk: RiskHigh}))
	assert.Equal(t, []string{"gdpr-art33-authority", "gdpr-art33-register"}, rules(Facts{Establishment: "US-NV", Affected: in("IE", 2)}),
		"EU residents of a tenant outside the EU")
	assert.Empty(t, rules(Facts{Establishment: "US-NV", Affected: in("IE", 0)}), "a count of 0 affects no one")
	assert.Equal(t, []string{"sec-8k-item-105 (waiting for the materiality determination)"}, rules(Facts{Establishment: "US-NV", Listed: true}))
	assert.Equal(t, []string{"tx-residents"}, rules(Facts{Establishment: "US-NV", Affected: in("US-TX", 249)}), "Texas AG from 250")
	assert.Equal(t, []string{"fl-residents"}, rules(Facts{Establishment: "US-NV", Affected: in("US-FL", 499)}), "Florida AG from 500")
	assert.Equal(t, []string{"wa-residents"}, rules(Facts{Establishment: "US-NV", Affected: in("US-WA", 500)}), "Washington AG above 500")
	assert.Equal(t, []string{"ca-residents", "ca-attorney-general (waiting for the notification under ca-residents)"},
		rules(Facts{Establishment: "US-NV", Affected: in("US-CA", 501)}))
	assert.Equal(t, []string{"ca-residents"}, rules(Facts{Establishment: "US-NV", Affected: in("US-CA", 500)}), "California AG above 500")
	assert.Equal(t, []string{"ca-residents", "ny-residents", "ny-attorney-general", "hipaa-individuals", "hipaa-hhs"},
		rules(Facts{Establishment: "US-NV", HIPAA: true, Affected: in("US-CA", 300, "US-NY", 300)}), "HIPAA media needs 501 in one state")
	assert.Equal(t, []string{"ca-residents", "ny-residents", "ny-attorney-general", "hipaa-individuals", "hipaa-hhs-annual-log"},
		rules(Facts{Establishment: "US-NV", HIPAA: true, Affected: in("US-CA", 300, "US-NY", 199)}), "499 go in the annual log, not to HHS within 60 days")
	assert.Equal(t, []string{"lgpd-anpd", "lgpd-subjects", "lgpd-anpd-supplement (waiting for the notification under lgpd-anpd)"},
		rules(Facts{Establishment: "BR"}))
	assert.Equal(t, []string{"lgpd-anpd-small-agent", "lgpd-subjects-small-agent"}, rules(Facts{Establishment: "BR", SmallAgent: true}))
	assert.Equal(t, []string{"pipeda-record"}, rules(Facts{Establishment: "CA", Risk: RiskSome}), "Canada is CA; California is US-CA")

	_, err := tbl.Derive(Facts{Establishment: "DE"})
	assert.ErrorContains(t, err, "no time of awareness")
}

// A malformed rule is refused at load with a message naming it.
func TestLoadRefusesMalformedRules(t *testing.T) {
	good := `
version: "1"
reminders: {of: 72, at: [24, 48]}
groups: {EU: [DE, FR]}
rules:
  - id: base
    version: 1
    regime: R
    notify: N
    starts: awareness
    limit: {hours: 72}
    source: S
`
	_, err := Load([]byte(good))
	require.NoError(t, err)

	cases := []struct{ name, rule, want string }{
		{"no source", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {hours: 1}}", `rule "x" version 1: the source is required`},
		{"two limits", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {hours: 1, days: 2}, zone: UTC, source: S}", `rule "x" version 1: the limit must be exactly one of`},
		{"unknown holidays", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {business_days: 3, holidays: XX}, zone: UTC, source: S}", `rule "x" version 1: no holiday calendar "XX"`},
		{"days without a zone", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {days: 30}, source: S}", `rule "x" version 1: a limit in days ends at midnight somewhere`},
		{"unknown event", "{id: x, version: 1, regime: R, notify: N, starts: breakfast, limit: {hours: 1}, source: S}", `rule "x" version 1: unknown starting event "breakfast"`},
		{"unknown exemption", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {hours: 1}, exemptions: [tired], source: S}", `rule "x" version 1: unknown exemption "tired"`},
		{"max below min", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {hours: 1}, when: {residents: [DE], min_residents: 10, max_residents: 5}, source: S}", `rule "x" version 1: max_residents must be positive, at least min_residents`},
		{"year end without a zone", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {after_year_end_days: 60}, source: S}", `rule "x" version 1: a limit in days ends at midnight somewhere`},
		{"after no rule", "{id: x, version: 1, regime: R, notify: N, starts: notified, after: nope, limit: {hours: 1}, source: S}", `rule "x" version 1: starts when notified, so after must name another rule (got "nope")`},
		{"open without target", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {open: soon}, source: S}", `rule "x" version 1: an open limit needs target_hours`},
		{"bad jurisdiction", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {hours: 1}, when: {residents: [california]}, source: S}", `rule "x" version 1: jurisdiction "california" is neither a group`},
		{"unknown zone", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {days: 1}, zone: Mars/Base, source: S}", `rule "x" version 1: unknown zone "Mars/Base"`},
		{"same version twice", "{id: base, version: 1, regime: R, notify: N, starts: awareness, limit: {hours: 1}, source: S}", `rule "base" version 1: the version is given twice`},
		{"overlapping versions", "{id: base, version: 2, regime: R, notify: N, starts: awareness, limit: {hours: 1}, source: S}", `rule "base" version 2: in effect at the same time as version 1`},
		{"no id", "{version: 1, regime: R, notify: N, starts: awareness, limit: {hours: 1}, source: S}", `rule #2 (no id)`},
		{"high risk mismatch", "{id: x, version: 1, regime: R, notify: N, starts: high_risk, limit: {hours: 1}, source: S}", `rule "x" version 1: a clock starts at the high-risk finding exactly when`},
		{"unknown field", "{id: x, version: 1, regime: R, notify: N, starts: awareness, limit: {hours: 1}, source: S, deadline: 3}", `field deadline not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(good + "  - " + tc.rule + "\n"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "invalid breach rules") || strings.HasPrefix(err.Error(), "reading the breach rules"), err.Error())
		})
	}
}
