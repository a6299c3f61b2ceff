package deadline

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/at"
	"github.com/rickar/cal/v2/be"
	"github.com/rickar/cal/v2/bg"
	"github.com/rickar/cal/v2/br"
	"github.com/rickar/cal/v2/ch"
	"github.com/rickar/cal/v2/cz"
	"github.com/rickar/cal/v2/de"
	"github.com/rickar/cal/v2/dk"
	"github.com/rickar/cal/v2/es"
	"github.com/rickar/cal/v2/fr"
	"github.com/rickar/cal/v2/gb"
	"github.com/rickar/cal/v2/gr"
	"github.com/rickar/cal/v2/hr"
	"github.com/rickar/cal/v2/ie"
	holit "github.com/rickar/cal/v2/it"
	"github.com/rickar/cal/v2/lt"
	"github.com/rickar/cal/v2/lv"
	"github.com/rickar/cal/v2/nl"
	holno "github.com/rickar/cal/v2/no"
	"github.com/rickar/cal/v2/pl"
	"github.com/rickar/cal/v2/ro"
	"github.com/rickar/cal/v2/se"
	"github.com/rickar/cal/v2/si"
	"github.com/rickar/cal/v2/sk"
	"github.com/rickar/cal/v2/us"
)

// calendars maps ISO 3166-1 alpha-2 codes to the national public holidays of
// github.com/rickar/cal/v2. Regional holidays (German Länder, Spanish communities, Swiss
// cantons) are left out on purpose: moving a due date over a day that is a working day for the
// tenant would make Lethe report a deadline later than the law's.
var calendars = map[string][]*cal.Holiday{
	"AT": at.Holidays,
	"BE": be.Holidays,
	"BG": bg.Holidays,
	"BR": brasil,
	// Switzerland has one federal holiday; these four are public holidays in every canton.
	// The library's list also holds days only some cantons keep (e.g. Berchtoldstag).
	"CH": {ch.Neujahr, ch.Auffahrt, ch.Bundesfeiertag, ch.Weihnachtstag},
	"CZ": cz.Holidays,
	"DE": de.Holidays,
	"DK": dk.Holidays,
	"ES": es.Holidays,
	"FR": fr.Holidays,
	"GB": gb.Holidays, // England and Wales bank holidays, with their substitute days
	"GR": gr.Holidays,
	"HR": hr.Holidays,
	"IE": ie.Holidays,
	"IT": holit.Holidays,
	"LT": lt.Holidays,
	"LV": lv.Holidays,
	"NL": nl.Holidays,
	"NO": holno.Holidays,
	"PL": pl.Holidays,
	"RO": ro.Holidays,
	"SE": se.Holidays,
	"SI": si.Holidays,
	"SK": sk.Holidays,
	"US": us.Holidays, // federal holidays, with their observed days
}

// brasil holds Brazil's national holidays (Lei 662/1949 as amended, Lei 6.802/1980, Lei
// 14.759/2023) and Good Friday, which the federal calendar keeps as a national holiday. The
// library's list also has Carnival and Corpus Christi, which are optional days (pontos
// facultativos), not holidays, and lacks Black Consciousness Day, national since 2024.
var brasil = []*cal.Holiday{
	br.AnoNovo, br.SextaFeiraSanta, br.Tiradentes, br.Trabalhador, br.Independencia,
	br.NossaSenhoraAparecida, br.Finados, br.Republica, conscienciaNegra, br.Natal,
}

var conscienciaNegra = &cal.Holiday{
	Name: "Dia Nacional de Zumbi e da Consciência Negra", Type: cal.ObservancePublic,
	Month: time.November, Day: 20, Func: cal.CalcDayOfMonth, StartYear: 2024,
}

// aliases are codes people type that are not the ISO code.
var aliases = map[string]string{"UK": "GB"}

// Countries lists the country codes that have a public-holiday calendar, sorted.
func Countries() []string { return slices.Clone(countryCodes) }

// countryCodes is sorted once at start: workflows reach Countries (through error messages),
// and workflow code must not iterate a map.
var countryCodes = func() []string {
	cs := make([]string, 0, len(calendars))
	for c := range calendars {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}()

// ParseCountry normalises a country code (case, "UK" for "GB") and checks that Lethe has its
// holidays. An empty string is valid and means "weekends only".
func ParseCountry(s string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	if c == "" {
		return "", nil
	}
	if a, ok := aliases[c]; ok {
		c = a
	}
	if _, ok := calendars[c]; ok {
		return c, nil
	}
	if len(c) != 2 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "", fmt.Errorf("invalid country %q: want an ISO 3166-1 alpha-2 code such as DE, FR or GB", s)
	}
	return "", fmt.Errorf("no public-holiday calendar for country %s; use one of %s, or give no country to move due dates past weekends only",
		c, strings.Join(Countries(), ", "))
}

// holiday names the public holiday observed on the given civil date in country, if any.
//
// Only the observed date counts as a day off, as in cal.BusinessCalendar.IsWorkday: where a
// holiday has a substitute (a Christmas Day on Saturday observed on Monday in GB, a 4 July on
// Saturday observed on Friday 3 July in the US), the substitute is the non-working day. Without
// a substitute rule the observed date is the actual date. Neighbouring years are checked because
// an observed day can cross new year (US New Year's Day 2028 is observed on 31 Dec 2027).
func holiday(country string, y int, m time.Month, d int) (string, bool) {
	for _, h := range calendars[country] {
		if h.Type == cal.ObservanceOther {
			continue // customary days off, not public holidays (Swedish Midsummer Eve)
		}
		for year := y - 1; year <= y+1; year++ {
			_, obs := h.Calc(year)
			if obs.IsZero() {
				continue
			}
			oy, om, od := obs.Date()
			if oy == y && om == m && od == d {
				return h.Name, true
			}
		}
	}
	return "", false
}
