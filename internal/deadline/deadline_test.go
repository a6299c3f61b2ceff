package deadline

import (
	"testing"
	"time"
	_ "time/tzdata" // the DST test needs Europe/Berlin whatever the machine has installed

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func date(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := ParseDate(s)
	require.NoError(t, err)
	return d
}

func TestDue(t *testing.T) {
	gdpr := Rule{Regime: GDPR}
	ccpa := Rule{Regime: CCPA}
	in := func(c string) Rule { return Rule{Regime: GDPR, Country: c} }

	cases := []struct {
		name     string
		rule     Rule
		received string
		extended bool
		end      string // where the period ends before moving to a working day
		due      string
	}{
		{"plain month", gdpr, "2026-06-15", false, "2026-07-15", "2026-07-15"},

		// End of month: the same date, or the last day of a shorter month.
		{"31 Jan to 28 Feb, a Saturday, then Monday", gdpr, "2026-01-31", false, "2026-02-28", "2026-03-02"},
		{"31 Jan to 28 Feb, a Sunday, then Monday", gdpr, "2027-01-31", false, "2027-02-28", "2027-03-01"},
		{"31 Jan to 29 Feb in a leap year", gdpr, "2028-01-31", false, "2028-02-29", "2028-02-29"},
		{"30 Jan to 29 Feb in a leap year", gdpr, "2028-01-30", false, "2028-02-29", "2028-02-29"},
		{"29 Jan to 29 Feb in a leap year", gdpr, "2028-01-29", false, "2028-02-29", "2028-02-29"},
		{"31 Jan 2024 to 29 Feb", gdpr, "2024-01-31", false, "2024-02-29", "2024-02-29"},
		{"2100 is not a leap year", gdpr, "2100-01-31", false, "2100-02-28", "2100-03-01"},
		{"28 Feb to 28 Mar, not the month's end", gdpr, "2026-02-28", false, "2026-03-28", "2026-03-30"},
		{"31 Mar to 30 Apr", gdpr, "2026-03-31", false, "2026-04-30", "2026-04-30"},
		{"31 May to 30 Jun", gdpr, "2026-05-31", false, "2026-06-30", "2026-06-30"},
		{"31 Aug to 30 Sep", gdpr, "2026-08-31", false, "2026-09-30", "2026-09-30"},
		{"31 Oct to 30 Nov", gdpr, "2026-10-31", false, "2026-11-30", "2026-11-30"},
		{"30 Apr to 30 May, a Saturday", gdpr, "2026-04-30", false, "2026-05-30", "2026-06-01"},
		{"31 Dec across the year to 31 Jan, a Sunday", gdpr, "2026-12-31", false, "2027-01-31", "2027-02-01"},

		// Public holidays of the tenant's country.
		{"DE Christmas Day, Boxing Day on Saturday, Sunday", in("DE"), "2026-11-25", false, "2026-12-25", "2026-12-28"},
		{"DE Good Friday over Easter to Tuesday", in("DE"), "2026-03-03", false, "2026-04-03", "2026-04-07"},
		{"DE Easter Monday", in("DE"), "2026-03-06", false, "2026-04-06", "2026-04-07"},
		{"DE has no substitute days", in("DE"), "2027-11-27", false, "2027-12-27", "2027-12-27"},
		{"without a country Christmas Day is a working day", gdpr, "2026-11-25", false, "2026-12-25", "2026-12-25"},
		{"GB substitutes for Christmas and Boxing Day on a weekend", in("GB"), "2027-11-27", false, "2027-12-27", "2027-12-29"},
		{"GB substitute for Boxing Day on Saturday", in("GB"), "2026-11-28", false, "2026-12-28", "2026-12-29"},
		{"GB Easter Monday", in("GB"), "2026-03-06", false, "2026-04-06", "2026-04-07"},
		{"US Independence Day on Saturday observed on Friday", in("US"), "2026-06-03", false, "2026-07-03", "2026-07-06"},
		{"FR Bastille Day", in("FR"), "2026-06-14", false, "2026-07-14", "2026-07-15"},
		{"NO Constitution Day", in("NO"), "2027-04-17", false, "2027-05-17", "2027-05-18"},
		{"CH National Day on Saturday", in("CH"), "2026-07-01", false, "2026-08-01", "2026-08-03"},
		{"CH cantonal Berchtoldstag is not rolled over", in("CH"), "2025-12-02", false, "2026-01-02", "2026-01-02"},
		{"SE Midsummer Eve is customary, not a public holiday", in("SE"), "2026-05-19", false, "2026-06-19", "2026-06-19"},

		// Extension: two months on from the un-moved end of the first month.
		{"extended", gdpr, "2026-03-15", true, "2026-06-15", "2026-06-15"},
		{"extended from a clamped month end", gdpr, "2026-01-31", true, "2026-04-28", "2026-04-28"},
		{"extended into a short February", gdpr, "2025-11-29", true, "2026-02-28", "2026-03-02"},
		{"extended onto DE Christmas", in("DE"), "2026-09-25", true, "2026-12-25", "2026-12-28"},

		// CCPA counts calendar days and never moves the date.
		{"CCPA 45 days, due on a Sunday", ccpa, "2026-01-01", false, "2026-02-15", "2026-02-15"},
		{"CCPA extended to 90 days", ccpa, "2026-01-01", true, "2026-04-01", "2026-04-01"},
		{"CCPA ignores US holidays and weekends", Rule{Regime: CCPA, Country: "US"}, "2026-05-20", false, "2026-07-04", "2026-07-04"},
		{"CCPA across a leap day", ccpa, "2028-01-20", false, "2028-03-05", "2028-03-05"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Compute(date(t, tc.received), tc.rule, tc.extended)
			require.NoError(t, err)
			assert.Equal(t, tc.end, d.End.Format(DateLayout), "end of period")
			assert.Equal(t, tc.due, d.Due.Format(DateLayout), "due")
			assert.Equal(t, tc.end != tc.due, d.Rolled())

			due, err := Due(date(t, tc.received), tc.rule, tc.extended)
			require.NoError(t, err)
			assert.Equal(t, d.Due, due)
		})
	}
}

func TestSkippedDaysExplainTheRoll(t *testing.T) {
	d, err := Compute(date(t, "2026-11-25"), Rule{Regime: GDPR, Country: "DE"}, false)
	require.NoError(t, err)
	require.Len(t, d.Skipped, 3)
	assert.Equal(t, "2026-12-25", d.Skipped[0].Date.Format(DateLayout))
	assert.Contains(t, d.Skipped[0].Reason, "public holiday")
	assert.Contains(t, d.Skipped[1].Reason, "Weihnacht", "a holiday on a Saturday is named as the holiday")
	assert.Equal(t, "Sunday", d.Skipped[2].Reason)
	assert.Equal(t, "1 month", d.Period)
	assert.Contains(t, d.Explain(), "ends 2026-12-25")
	assert.Contains(t, d.Explain(), "Sun 2026-12-27 Sunday")

	plain, err := Compute(date(t, "2026-06-15"), Rule{Regime: GDPR}, false)
	require.NoError(t, err)
	assert.Empty(t, plain.Explain())
}

func TestErrors(t *testing.T) {
	received := date(t, "2026-03-01")
	for _, tc := range []struct {
		name string
		rule Rule
		want string
	}{
		{"invalid regime", Rule{Regime: "lgpd"}, `unknown regime "lgpd": want gdpr or ccpa`},
		{"empty regime", Rule{}, `unknown regime "": want gdpr or ccpa`},
		{"unknown country", Rule{Regime: GDPR, Country: "XX"}, "no public-holiday calendar for country XX; use one of AT, BE,"},
		{"EU country without a calendar", Rule{Regime: GDPR, Country: "PT"}, "or give no country to move due dates past weekends only"},
		{"not a code", Rule{Regime: GDPR, Country: "Germany"}, `invalid country "Germany": want an ISO 3166-1 alpha-2 code`},
		{"not normalised", Rule{Regime: GDPR, Country: "de"}, `country "de" must be given as "DE"`},
		{"unknown country under CCPA too", Rule{Regime: CCPA, Country: "XX"}, "no public-holiday calendar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Due(received, tc.rule, false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := Due(time.Time{}, Rule{Regime: GDPR}, false)
	assert.EqualError(t, err, "no date of receipt")
}

func TestParse(t *testing.T) {
	r, err := ParseRule(" GDPR ", "uk")
	require.NoError(t, err)
	assert.Equal(t, Rule{Regime: GDPR, Country: "GB"}, r)

	r, err = ParseRule("ccpa", "")
	require.NoError(t, err)
	assert.Equal(t, Rule{Regime: CCPA}, r)

	_, err = ParseRule("hipaa", "DE")
	assert.EqualError(t, err, `unknown regime "hipaa": want gdpr or ccpa`)
	_, err = ParseRule("gdpr", "ZZ")
	assert.ErrorContains(t, err, "no public-holiday calendar for country ZZ")

	d, err := ParseDate("2026-02-28")
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), d)
	for _, bad := range []string{"2026-02-30", "28.02.2026", "2026-2-28", ""} {
		_, err := ParseDate(bad)
		assert.ErrorContains(t, err, "want YYYY-MM-DD", bad)
	}
}

func TestCountries(t *testing.T) {
	cs := Countries()
	for _, c := range []string{"AT", "BE", "CH", "DE", "ES", "FR", "GB", "IE", "IT", "NL", "NO", "PL", "SE", "US"} {
		assert.Contains(t, cs, c)
	}
	// Every calendar is wired to real holidays: New Year's Day is one everywhere.
	for _, c := range cs {
		_, ok := holiday(c, 2026, time.January, 1)
		assert.True(t, ok, "%s: 1 Jan 2026 should be a public holiday", c)
		_, ok = holiday(c, 2026, time.March, 10)
		assert.False(t, ok, "%s: 10 Mar 2026 should be an ordinary day", c)
	}
}

// An observed day can fall in the year before the holiday itself.
func TestObservedDayAcrossNewYear(t *testing.T) {
	name, ok := holiday("US", 2027, time.December, 31)
	assert.True(t, ok, "New Year's Day 2028 is a Saturday, observed Friday 31 Dec 2027")
	assert.Equal(t, "New Year's Day", name)
	_, ok = holiday("DE", 2027, time.December, 31)
	assert.False(t, ok)
}

// The date of receipt is read in the location of the time given, and the result stays there.
func TestTimeZone(t *testing.T) {
	instant := time.Date(2026, 3, 14, 23, 30, 0, 0, time.UTC)
	cet := time.FixedZone("CET", 3600)

	utc, err := Due(instant, Rule{Regime: GDPR}, false)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 4, 14, 0, 0, 0, 0, time.UTC), utc)

	local, err := Due(instant.In(cet), Rule{Regime: GDPR}, false)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 4, 15, 0, 0, 0, 0, cet), local)
	assert.Equal(t, cet, local.Location())
	assert.Equal(t, time.Date(2026, 4, 16, 0, 0, 0, 0, cet), OverdueAt(local))
}

// Over seven years and every calendar: the due date is a working day on or after the end of the
// period, a later receipt never gives an earlier date, and an extension never shortens it.
func TestProperties(t *testing.T) {
	countries := append([]string{""}, Countries()...)
	for _, c := range countries {
		rule := Rule{Regime: GDPR, Country: c}
		var prev time.Time
		for day := date(t, "2024-01-01"); day.Year() < 2031; day = day.AddDate(0, 0, 1) {
			d, err := Compute(day, rule, false)
			require.NoError(t, err)
			if _, off := dayOff(c, d.Due); off {
				t.Fatalf("%s %s: due %s is not a working day", c, day.Format(DateLayout), d.Due.Format(DateLayout))
			}
			require.False(t, d.Due.Before(d.End))
			require.Less(t, d.Due.Sub(d.End), 8*24*time.Hour, "%s %s", c, day)
			require.False(t, d.Due.Before(prev), "%s %s: due went backwards", c, day)
			prev = d.Due

			ext, err := Due(day, rule, true)
			require.NoError(t, err)
			require.True(t, ext.After(d.Due))
		}
	}
}

func TestReminders(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	due := time.Date(2026, 4, 15, 0, 0, 0, 0, cet)
	day := 24 * time.Hour

	got := Reminders(due, []time.Duration{2 * day, 7 * day, 7 * day, 36 * time.Hour, -day})
	assert.Equal(t, []time.Time{
		time.Date(2026, 4, 8, 0, 0, 0, 0, cet),
		time.Date(2026, 4, 13, 0, 0, 0, 0, cet),
		time.Date(2026, 4, 13, 12, 0, 0, 0, cet),
		time.Date(2026, 4, 16, 0, 0, 0, 0, cet), // after due: an escalation
	}, got)
	assert.Empty(t, Reminders(due, nil))

	assert.Equal(t, []time.Time{due.AddDate(0, 0, -7), due.AddDate(0, 0, -2)}, Reminders(due, DefaultReminders()))
}

// Whole-day offsets keep the wall-clock time across a daylight-saving change.
func TestRemindersAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	due := time.Date(2026, 4, 2, 0, 0, 0, 0, berlin) // summer time began on 29 March
	got := Reminders(due, []time.Duration{7 * 24 * time.Hour})
	require.Len(t, got, 1)
	assert.Equal(t, time.Date(2026, 3, 26, 0, 0, 0, 0, berlin), got[0])
	assert.Equal(t, 7*24*time.Hour-time.Hour, due.Sub(got[0]))
}

func TestAddWorkingDays(t *testing.T) {
	cases := []struct {
		name, country, from string
		n                   int
		want                string
	}{
		{"BR Black Consciousness Day, then a weekend", "BR", "2026-11-19", 3, "2026-11-25"},
		{"BR Tiradentes", "BR", "2026-04-20", 3, "2026-04-24"},
		{"BR Carnival Tuesday is a working day", "BR", "2026-02-16", 1, "2026-02-17"},
		{"US Thanksgiving and a weekend", "US", "2026-11-25", 4, "2026-12-02"},
		{"US New Year's Day on a Friday", "US", "2026-12-31", 4, "2027-01-07"},
		{"weekends only", "", "2026-12-24", 2, "2026-12-28"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := AddWorkingDays(date(t, tc.from), tc.n, tc.country)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.Format(DateLayout))
		})
	}
	_, _, err := AddWorkingDays(date(t, "2026-01-01"), 1, "br")
	assert.ErrorContains(t, err, `must be given as "BR"`)
	assert.Equal(t, "2026-02-28", AddMonths(date(t, "2026-01-31"), 1).Format(DateLayout))
}
