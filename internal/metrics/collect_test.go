package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
)

// A scrape within the refresh interval is served from the cache; a failed read serves the last
// good numbers and is counted.
func TestCacheServesWithinItsRefresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	reads, fail := 0, false
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "errs"})
	c := &cache[int]{ttl: 15 * time.Second, now: func() time.Time { return now }, errors: errs,
		load: func(context.Context) (int, error) {
			if fail {
				return 0, errors.New("database down")
			}
			reads++
			return reads, nil
		}}
	v, ok := c.get()
	assert.True(t, ok)
	assert.Equal(t, 1, v)
	now = now.Add(10 * time.Second)
	v, _ = c.get()
	assert.Equal(t, 1, v, "within 15 s: no second read")
	now = now.Add(10 * time.Second)
	v, _ = c.get()
	assert.Equal(t, 2, v, "after 15 s: read again")
	fail = true
	now = now.Add(time.Minute)
	v, ok = c.get()
	assert.True(t, ok)
	assert.Equal(t, 2, v, "the last good numbers while the source fails")
	assert.Equal(t, 1.0, testutil.ToFloat64(errs))
}

// Every name Names lists is one the registry can export.
func TestNamesAreLetheMetrics(t *testing.T) {
	for _, n := range Names() {
		assert.Regexp(t, `^lethe_[a-z0-9_]+$`, n)
	}
}
