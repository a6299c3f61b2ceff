package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/store"
)

// sourceTimeout bounds one read of a source, so a slow database cannot hang a scrape.
const sourceTimeout = 5 * time.Second

// cache serves a source's last numbers for ttl; concurrent scrapes share one read, and a failed
// read serves the last good numbers (counted in lethe_metrics_source_errors_total).
type cache[T any] struct {
	ttl    time.Duration
	now    func() time.Time
	load   func(context.Context) (T, error)
	errors prometheus.Counter

	mu  sync.Mutex
	at  time.Time
	val T
	ok  bool
}

func (c *cache[T]) get() (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.ok && c.ttl > 0 && now.Sub(c.at) < c.ttl {
		return c.val, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), sourceTimeout)
	defer cancel()
	v, err := c.load(ctx)
	if err != nil {
		c.errors.Inc()
		return c.val, c.ok
	}
	c.val, c.at, c.ok = v, now, true
	return v, true
}

var (
	requestsDesc = prometheus.NewDesc(Requests, "Requests in the read model by tenant, type and status.", []string{"tenant", "type", "status"}, nil)
	overdueDesc  = prometheus.NewDesc(RequestsOverdue, "Open requests past their due date, by tenant.", []string{"tenant"}, nil)
	dueSoonDesc  = prometheus.NewDesc(RequestsDueSoon, "Open requests due today or within the next 7 days, by tenant.", []string{"tenant"}, nil)
	clockDesc    = prometheus.NewDesc(BreachClockHours, "Hours until a breach clock that is still waiting for its notification runs out (negative once past).", []string{"tenant", "breach_id", "rule"}, nil)
	computedDesc = prometheus.NewDesc(readModelComputeAt, "When the read-model numbers served were read from PostgreSQL.", nil, nil)
	lagDesc      = prometheus.NewDesc(ConsumerLag, "Messages a consumer group of this process has yet to commit on a topic, summed over partitions.", []string{"group", "topic"}, nil)
)

// readModel is the collector of the request and breach gauges.
type readModel struct {
	tenants []string
	cache   *cache[store.Gauges]
	now     func() time.Time
}

// ReadModel registers the gauges read from PostgreSQL (requests by tenant, type and status,
// overdue and due-soon counts, breach clocks' remaining hours), read at most once per ttl.
// tenants get a zero overdue and due-soon series even with no open request.
func (m *Metrics) ReadModel(s *store.Store, tenants []string, ttl time.Duration, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	c := &cache[store.Gauges]{ttl: ttl, now: now, errors: m.sourceErrors.WithLabelValues("postgres"),
		load: func(ctx context.Context) (store.Gauges, error) {
			return s.Gauges(ctx, now(), domain.TerminalStatuses())
		}}
	return m.Registry.Register(&readModel{tenants: tenants, cache: c, now: now})
}

func (r *readModel) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, overdueDesc, dueSoonDesc, clockDesc, computedDesc} {
		ch <- d
	}
}

func (r *readModel) Collect(ch chan<- prometheus.Metric) {
	g, ok := r.cache.get()
	if !ok {
		return
	}
	for _, c := range g.Requests {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.GaugeValue, float64(c.N), c.TenantID, c.Type, c.Status)
	}
	due := map[string]store.DueCount{}
	for _, t := range r.tenants {
		due[t] = store.DueCount{TenantID: t}
	}
	for _, d := range g.Due {
		due[d.TenantID] = d
	}
	for t, d := range due {
		ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(d.Overdue), t)
		ch <- prometheus.MustNewConstMetric(dueSoonDesc, prometheus.GaugeValue, float64(d.DueSoon), t)
	}
	now := r.now()
	for _, c := range g.Clocks {
		ch <- prometheus.MustNewConstMetric(clockDesc, prometheus.GaugeValue, c.Due.Sub(now).Hours(), c.TenantID, c.BreachID, c.Rule)
	}
	r.cache.mu.Lock()
	at := r.cache.at
	r.cache.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(computedDesc, prometheus.GaugeValue, float64(at.UnixNano())/1e9)
}

// GroupLag is one consumer group's lag on one topic (names without the deployment's prefix).
type GroupLag struct {
	Group, Topic string
	Lag          int64
}

// LagSource reports the lag of the consumer groups a process runs (bus.Bus).
type LagSource interface {
	ConsumerLag(ctx context.Context) ([]GroupLag, error)
}

type lag struct{ cache *cache[[]GroupLag] }

// KafkaLag registers the lag of src's consumer groups, read from Kafka at most once per ttl.
func (m *Metrics) KafkaLag(src LagSource, ttl time.Duration) error {
	return m.Registry.Register(&lag{cache: &cache[[]GroupLag]{ttl: ttl, now: time.Now, load: src.ConsumerLag, errors: m.sourceErrors.WithLabelValues("kafka")}})
}

func (l *lag) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (l *lag) Collect(ch chan<- prometheus.Metric) {
	lags, _ := l.cache.get()
	for _, g := range lags {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(g.Lag), g.Group, g.Topic)
	}
}
