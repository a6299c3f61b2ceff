package e2e_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/metrics"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// scrape reads url's /metrics into name → series, each series keyed by its sorted labels.
func scrape(t *testing.T, url string) map[string]map[string]float64 {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	out := map[string]map[string]float64{}
	for name, f := range fams {
		out[name] = map[string]float64{}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			out[name][strings.Join(labels, ",")] = value(f.GetType(), m)
		}
	}
	return out
}

// value is a series' number: a histogram's count.
func value(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

// The whole stack in one process, as lethe dev runs it: after an access request, an overdue
// one, a breach and a malformed intake message, /metrics shows each number move, and no label
// holds the subject's address.
func TestMetricsMoveOnTheWholeStack(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "metrics", Listen: true, Env: map[string]string{"LETHE_METRICS_REFRESH": "0s"}}), t: t}
	s.RunAll()
	s.Serve(s.Handler())
	ctx := context.Background()

	before := scrape(t, s.URL)
	assert.Equal(t, 0.0, before[metrics.RequestsOverdue]["tenant=salon"], "every tenant has an overdue series, zero at first")
	assert.Zero(t, before[metrics.Requests]["status=completed,tenant=salon,type=access"])

	id := s.Submit(domain.TypeAccess, connectors.Subject{Email: demo.ClearCustomerEmail})
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
	// Received two months ago and never verified: open, and past its due date.
	late, err := s.Deps.Requests().Submit(ctx, requests.Submission{TenantID: "salon", Type: domain.TypeErasure, Subject: connectors.Subject{Email: "late-" + testenv.Suffix() + "@example.com"},
		Channel: "post", ReceivedAt: time.Now().AddDate(0, -2, 0)})
	require.NoError(t, err)
	breach, err := s.Deps.Breaches().Open(ctx, breaches.Opening{TenantID: "salon", Title: "Lost laptop", AwareAt: time.Now().Add(-10 * time.Hour),
		Affected: []breachclock.Residents{{Jurisdiction: "DE", Count: 40}}, Content: &store.Art33{Nature: "Laptop stolen"}, OpenedBy: "dpo"})
	require.NoError(t, err)
	require.NoError(t, s.Deps.Bus.PublishRaw(ctx, bus.TopicIntake, "k", []byte("{not json")))

	var after map[string]map[string]float64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		after = scrape(t, s.URL)
		// The dead letter is counted before its message is committed: wait for the commit too.
		lag, committed := after[metrics.ConsumerLag]["group=lethe-intake,topic=lethe.requests.intake"]
		ready := after[metrics.RequestsOverdue]["tenant=salon"] == 1 && len(after[metrics.BreachClockHours]) > 0 &&
			after[metrics.DeadLetters]["reason=invalid_message,topic=lethe.requests.intake"] == 1 && committed && lag == 0
		if ready || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling the read model the workflows write
	}
	assert.Equal(t, 1.0, after[metrics.Requests]["status=completed,tenant=salon,type=access"], "the completed access request")
	assert.Equal(t, 1.0, after[metrics.RequestsOverdue]["tenant=salon"], "request %s is overdue", late)
	assert.Equal(t, 1.0, after[metrics.TimeToClose]["status=completed,tenant=salon,type=access"], "one request closed")
	assert.GreaterOrEqual(t, after[metrics.ConnectorDuration]["action=access,connector=database,outcome=succeeded"], 1.0)
	assert.Equal(t, 1.0, after[metrics.DeadLetters]["reason=invalid_message,topic=lethe.requests.intake"])
	var clock float64
	for labels, v := range after[metrics.BreachClockHours] {
		if strings.Contains(labels, "breach_id="+breach) && strings.Contains(labels, "rule=gdpr-art33-authority") {
			clock = v
		}
	}
	assert.InDelta(t, 62, clock, 0.5, "72 hours from awareness ten hours ago")
	lag, ok := after[metrics.ConsumerLag]["group=lethe-intake,topic=lethe.requests.intake"]
	assert.True(t, ok, "the intake consumer's lag is exported: %v", after[metrics.ConsumerLag])
	assert.Zero(t, lag, "every intake message is committed, the malformed one too")
	for name, series := range after {
		for labels := range series {
			assert.NotContains(t, labels, "@", "%s has personal data in its labels", name)
		}
	}
}
