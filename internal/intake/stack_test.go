package intake_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/intake"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is one Lethe deployment for one test (see teststack): one partition per topic, so
// committed offsets can be read, and a second tenant.
type stack struct {
	*teststack.Stack
	t       *testing.T
	retries *atomic.Int64 // handler failures the bus logged as "retrying"
}

const signingKey = "intake-signing-key-0123456789abcdef"

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t, retries: &atomic.Int64{}}
	s.Stack = teststack.New(t, teststack.Options{
		Name: "intake",
		Tenants: teststack.Salon + `
  - id: spa
    name: Spa Example
    regime: gdpr
    country: AT
    contact_email: privacy@spa.example`,
		SigningKey: signingKey,
		Partitions: 1,
		LogHandler: func(h slog.Handler) slog.Handler { return counting{h, s.retries} },
	})
	return s
}

// counting counts the bus's retry warnings, so a test can wait until a failing message has
// really been tried.
type counting struct {
	slog.Handler
	n *atomic.Int64
}

func (c counting) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "handler failed; retrying" {
		c.n.Add(1)
	}
	return c.Handler.Handle(ctx, r)
}

func (c counting) WithAttrs(a []slog.Attr) slog.Handler { return counting{c.Handler.WithAttrs(a), c.n} }
func (c counting) WithGroup(g string) slog.Handler      { return counting{c.Handler.WithGroup(g), c.n} }

// intake builds an Intake over svc (the stack's own request service when nil).
func (s *stack) intake(svc *requests.Service) *intake.Intake {
	if svc == nil {
		svc = s.Deps.Requests()
	}
	return &intake.Intake{Bus: s.Deps.Bus, Requests: svc, Store: svc.Store, SigningKey: signingKey, Log: s.Deps.Log}
}

// publish writes a message that must match its schema.
func (s *stack) publish(topic string, msg any) {
	s.t.Helper()
	require.NoError(s.t, s.Deps.Bus.Publish(context.Background(), topic, "k", msg))
}

// publishRaw writes bytes as they are, for messages Lethe must refuse.
func (s *stack) publishRaw(topic string, value []byte) {
	s.t.Helper()
	require.NoError(s.t, s.Deps.Bus.PublishRaw(context.Background(), topic, "k", value))
}

// committed is the group's committed offset on partition 0 of topic (-1 when none).
func (s *stack) committed(group, topic string) int64 {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(s.Deps.Bus.Brokers()...)}
	real := s.Prefix + topic
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: s.Prefix + group, Topics: map[string][]int{real: {0}}})
	require.NoError(s.t, err)
	if len(res.Topics[real]) != 1 {
		return -1
	}
	return res.Topics[real][0].CommittedOffset
}

// waitCommitted polls until the group has committed at least want on topic.
func (s *stack) waitCommitted(group, topic string, want int64) {
	s.t.Helper()
	eventually(s.t, 90*time.Second, func() bool { return s.committed(group, topic) >= want },
		"group %s never committed offset %d of %s", group, want, topic)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// deadLetters reads the dead letters whose source is topic, in order, until want were found.
func (s *stack) deadLetters(topic string, want int) []protocol.DeadLetter {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.Deps.Bus.Brokers(), Topic: s.Prefix + bus.TopicDLQ, Partition: 0,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []protocol.DeadLetter
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		require.NoError(s.t, err, "reading dead letters after %d of %d", len(out), want)
		var dl protocol.DeadLetter
		require.NoError(s.t, json.Unmarshal(m.Value, &dl))
		if dl.SourceTopic == s.Prefix+topic {
			out = append(out, dl)
		}
	}
	return out
}

// count runs a count(*) query on Lethe's database.
func (s *stack) count(q string, args ...any) int {
	s.t.Helper()
	var n int
	require.NoError(s.t, s.Deps.Store.Pool.QueryRow(context.Background(), q, args...).Scan(&n))
	return n
}

// workflowExists reports whether Temporal knows a workflow with this id.
func (s *stack) workflowExists(id string) bool {
	s.t.Helper()
	_, err := s.Deps.Temporal.DescribeWorkflowExecution(context.Background(), id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false
	}
	require.NoError(s.t, err)
	return true
}

// intakeMessage is a lethe.request.intake v1 message as a sending service writes it.
type intakeMessage struct {
	Schema     string             `json:"schema"`
	Version    int                `json:"version"`
	RequestID  string             `json:"request_id,omitempty"`
	TenantID   string             `json:"tenant_id"`
	Type       string             `json:"type"`
	Subject    connectors.Subject `json:"subject"`
	ReceivedAt *time.Time         `json:"received_at,omitempty"`
	Regime     string             `json:"regime,omitempty"`
	Country    string             `json:"country,omitempty"`
	Channel    string             `json:"channel,omitempty"`
	Changes    map[string]string  `json:"changes,omitempty"`
}

func newIntake(id, tenant, typ, email string) intakeMessage {
	return intakeMessage{Schema: "lethe.request.intake", Version: 1, RequestID: id, TenantID: tenant, Type: typ,
		Subject: connectors.Subject{Email: email}}
}

// consentMessage is a lethe.consent.change v1 message.
type consentMessage struct {
	Schema    string             `json:"schema"`
	Version   int                `json:"version"`
	TenantID  string             `json:"tenant_id"`
	Subject   connectors.Subject `json:"subject"`
	Purpose   string             `json:"purpose"`
	Granted   bool               `json:"granted"`
	ChangedAt time.Time          `json:"changed_at"`
	Source    string             `json:"source"`
}

func newConsent(tenant, email, purpose string, granted bool, at time.Time) consentMessage {
	return consentMessage{Schema: "lethe.consent.change", Version: 1, TenantID: tenant, Subject: connectors.Subject{Email: email},
		Purpose: purpose, Granted: granted, ChangedAt: at, Source: "mailchimp"}
}

// temporalDown is a Temporal client whose frontend cannot be reached for starts.
type temporalDown struct {
	client.Client
	calls *atomic.Int64
}

func (d temporalDown) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	d.calls.Add(1)
	return nil, serviceerror.NewUnavailable("connection refused")
}
