// Package metrics is what Lethe's processes export on /metrics (Prometheus): one Metrics per
// process, holding the counters and histograms the process's parts observe, and collectors
// for the numbers that live elsewhere (the read model in PostgreSQL, consumer groups' lag in
// Kafka), computed at scrape time behind a short cache. Labels carry tenants, request types,
// statuses, connector instances, topics, consumer groups, breach ids and rule ids, never
// personal data. The names are listed once, in Names, which the Grafana dashboard and the
// alert rules in deploy/ are tested against.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The exported metric names.
const (
	Requests           = "lethe_requests"
	RequestsOverdue    = "lethe_requests_overdue"
	RequestsDueSoon    = "lethe_requests_due_within_7d"
	TimeToClose        = "lethe_request_time_to_close_seconds"
	ConnectorDuration  = "lethe_connector_command_duration_seconds"
	ConnectorErrors    = "lethe_connector_errors_total"
	DeadLetters        = "lethe_dlq_messages_total"
	ConsumerLag        = "lethe_kafka_consumer_lag"
	BreachClockHours   = "lethe_breach_clock_remaining_hours"
	ScrapeErrors       = "lethe_metrics_source_errors_total"
	readModelComputeAt = "lethe_read_model_computed_timestamp_seconds"
)

// Names are every metric name Lethe defines (histograms as their base name).
func Names() []string {
	return []string{Requests, RequestsOverdue, RequestsDueSoon, TimeToClose, ConnectorDuration, ConnectorErrors,
		DeadLetters, ConsumerLag, BreachClockHours, ScrapeErrors, readModelComputeAt}
}

// Metrics is one process's registry with the series its parts observe. Its methods are safe
// for concurrent use; a nil *Metrics observes nothing, for code built without one (tests).
type Metrics struct {
	Registry *prometheus.Registry

	timeToClose       *prometheus.HistogramVec
	connectorDuration *prometheus.HistogramVec
	connectorErrors   *prometheus.CounterVec
	deadLetters       *prometheus.CounterVec
	sourceErrors      *prometheus.CounterVec
}

// New builds the registry with the Go runtime and process collectors and Lethe's own series.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		timeToClose: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: TimeToClose, Help: "Time from a request's receipt to its closing (completed, denied, canceled), observed by the worker that records the closing.",
			// one hour to about 90 days: the legal deadlines are 30 and 45 days, extended 90
			Buckets: []float64{3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400, 21 * 86400, 30 * 86400, 45 * 86400, 60 * 86400, 90 * 86400},
		}, []string{"tenant", "type", "status"}),
		connectorDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: ConnectorDuration, Help: "Time a connector runner took to perform a command, by instance, action and outcome (succeeded, failed).",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 9), // 10 ms to about 11 min
		}, []string{"connector", "action", "outcome"}),
		connectorErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ConnectorErrors, Help: "Commands a connector runner answered with an error, by instance, action and error code.",
		}, []string{"connector", "action", "code"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: DeadLetters, Help: "Messages this process wrote to lethe.dlq, by the topic they came from and the class of reason.",
		}, []string{"topic", "reason"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ScrapeErrors, Help: "Scrapes whose numbers could not be read from their source (postgres, kafka); the last good numbers are served meanwhile.",
		}, []string{"source"}),
	}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.timeToClose, m.connectorDuration, m.connectorErrors, m.deadLetters, m.sourceErrors)
	return m
}

// Closed observes a request's time to close.
func (m *Metrics) Closed(tenant, typ, status string, seconds float64) {
	if m != nil {
		m.timeToClose.WithLabelValues(tenant, typ, status).Observe(max(seconds, 0))
	}
}

// Command observes one command a connector runner performed; code is the error's code, "" when
// it succeeded.
func (m *Metrics) Command(connector, action, code string, seconds float64) {
	if m == nil {
		return
	}
	outcome := "succeeded"
	if code != "" {
		outcome = "failed"
		m.connectorErrors.WithLabelValues(connector, action, code).Inc()
	}
	m.connectorDuration.WithLabelValues(connector, action, outcome).Observe(seconds)
}

// DeadLettered counts a message written to lethe.dlq; reason is a class (Reason*), never the
// message's own text, which may quote the payload.
func (m *Metrics) DeadLettered(topic, reason string) {
	if m != nil {
		m.deadLetters.WithLabelValues(topic, reason).Inc()
	}
}

// The classes of dead-letter reasons.
const (
	ReasonInvalid     = "invalid_message"     // not JSON, or not its schema
	ReasonNotAccepted = "schema_not_accepted" // a valid message of a schema the topic does not take
	ReasonRejected    = "rejected"            // the handler refused it (unknown tenant, forged result, ...)
	ReasonGaveUp      = "gave_up"             // the handler kept failing past its attempts
	ReasonPanic       = "panic"
)
