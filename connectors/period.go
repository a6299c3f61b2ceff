package connectors

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is a retention period: a Go duration ("36h"), a whole number of days ("730d") or of
// years ("3y", 365 days each), as retention settings are written.
type Period time.Duration

// UnmarshalText accepts "730d" and "3y" as well as Go durations.
func (p *Period) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "y": 365 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v <= 0 {
				return fmt.Errorf("period %q: want a positive number of days or years such as 730d or 3y", s)
			}
			*p = Period(time.Duration(v) * unit)
			return nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("period %q: want a duration such as 720h, 730d or 3y", s)
	}
	*p = Period(d)
	return nil
}

// MarshalText writes the period in days when it is a whole number of them.
func (p Period) MarshalText() ([]byte, error) {
	d := time.Duration(p)
	if d > 0 && d%(24*time.Hour) == 0 {
		return []byte(strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"), nil
	}
	return []byte(d.String()), nil
}
