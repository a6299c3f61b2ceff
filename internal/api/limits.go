package api

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a token bucket: Burst calls at once, then one more every Every. A zero Burst turns
// the limit off.
type Limit struct {
	Every time.Duration
	Burst int
}

// Limits are the rate limits of the public submission and verification routes, per tenant
// and per subject. The buckets live in this process: behind a load balancer with N Lethe
// processes a caller can get up to N times these numbers.
type Limits struct {
	SubmitPerTenant  Limit
	SubmitPerSubject Limit
	VerifyPerTenant  Limit
	VerifyPerSubject Limit
	ResendPerTenant  Limit
	ResendPerSubject Limit
}

// DefaultLimits suit one tenant's host app and staff: bursts a busy day brings, while one
// subject cannot flood their inbox or guess codes at speed.
func DefaultLimits() Limits {
	return Limits{
		SubmitPerTenant:  Limit{Every: 100 * time.Millisecond, Burst: 100},
		SubmitPerSubject: Limit{Every: 10 * time.Minute, Burst: 5},
		VerifyPerTenant:  Limit{Every: 100 * time.Millisecond, Burst: 100},
		VerifyPerSubject: Limit{Every: time.Minute, Burst: 10},
		ResendPerTenant:  Limit{Every: 200 * time.Millisecond, Burst: 50},
		ResendPerSubject: Limit{Every: 5 * time.Minute, Burst: 3},
	}
}

// limiter holds one bucket set per limit.
type limiter struct {
	submitTenant, submitSubject *buckets
	verifyTenant, verifySubject *buckets
	resendTenant, resendSubject *buckets
}

func newLimiter(l Limits) *limiter {
	return &limiter{
		submitTenant: newBuckets(l.SubmitPerTenant), submitSubject: newBuckets(l.SubmitPerSubject),
		verifyTenant: newBuckets(l.VerifyPerTenant), verifySubject: newBuckets(l.VerifyPerSubject),
		resendTenant: newBuckets(l.ResendPerTenant), resendSubject: newBuckets(l.ResendPerSubject),
	}
}

// maxIdleBuckets is when full (idle) buckets are dropped; a full bucket is the same as none.
const maxIdleBuckets = 10000

type buckets struct {
	limit Limit
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newBuckets(l Limit) *buckets { return &buckets{limit: l, m: map[string]*rate.Limiter{}} }

func (b *buckets) reserve(key string, now time.Time) *rate.Reservation {
	if b.limit.Burst <= 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.m[key]
	if !ok {
		if len(b.m) >= maxIdleBuckets {
			for k, v := range b.m {
				if v.TokensAt(now) >= float64(b.limit.Burst) {
					delete(b.m, k)
				}
			}
		}
		l = rate.NewLimiter(rate.Every(b.limit.Every), b.limit.Burst)
		b.m[key] = l
	}
	return l.ReserveN(now, 1)
}

// spend is one token to take from one bucket.
type spend struct {
	from *buckets
	key  string
}

// take spends every token or none: when any bucket is empty it returns how long to wait until
// all of them have a token again.
func take(now time.Time, spends ...spend) (wait time.Duration) {
	var got []*rate.Reservation
	for _, s := range spends {
		r := s.from.reserve(s.key, now)
		if r == nil {
			continue
		}
		got = append(got, r)
		if !r.OK() {
			wait = max(wait, time.Hour)
		} else if d := r.DelayFrom(now); d > wait {
			wait = d
		}
	}
	if wait > 0 {
		for _, r := range got {
			r.CancelAt(now)
		}
	}
	return wait
}

// retryAfter is the Retry-After header value: whole seconds, at least one.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
