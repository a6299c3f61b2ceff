package intake_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailgun/mailgun-go/v4"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/intake"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/testenv"

	_ "github.com/lethe-privacy/lethe/connectors/database"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is one Lethe deployment for one test: its own databases, topic prefix and task queue on
// the shared PostgreSQL, Kafka broker and Temporal dev server.
type stack struct {
	t       *testing.T
	cfg     config.Config
	env     map[string]string
	prefix  string
	deps    *app.Deps
	demo    *pgxpool.Pool
	retries *atomic.Int64 // handler failures the bus logged as "retrying"
}

const signingKey = "intake-signing-key-0123456789abcdef"

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{t: t, prefix: "intake-" + testenv.Suffix() + ".", retries: &atomic.Int64{}}
	mail := mailgun.NewMockServer()
	t.Cleanup(mail.Stop)

	demoURL := testenv.PostgresURL(t)
	pool, err := pgxpool.New(ctx, demoURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = demo.Load(ctx, pool, time.Now())
	require.NoError(t, err)
	s.demo = pool

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "lethe.yaml")
	connector := strings.ReplaceAll("\n"+string(demo.ConnectorConfig), "\n", "\n    ")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`
tenants:
  - id: salon
    name: Salon Example
    regime: gdpr
    country: DE
    time_zone: Europe/Berlin
    contact_email: privacy@salon.example
    policy: {manual_approval: []}
  - id: spa
    name: Spa Example
    regime: gdpr
    country: AT
    contact_email: privacy@spa.example
mail: {domain: mg.salon.example, from: privacy@mg.salon.example}
connectors:
  database:`+connector+"\n"), 0o600))
	s.env = map[string]string{
		"DATABASE_URL":              testenv.PostgresURL(t),
		"LETHE_KAFKA_BROKERS":       strings.Join(testenv.KafkaBrokers(t), ","),
		"LETHE_KAFKA_TOPIC_PREFIX":  s.prefix,
		"LETHE_KAFKA_PARTITIONS":    "1",
		"LETHE_TEMPORAL_HOSTPORT":   testenv.TemporalHostPort(t),
		"LETHE_TEMPORAL_TASK_QUEUE": "intake-" + testenv.Suffix(),
		"LETHE_EXPORTS_DIR":         filepath.Join(dir, "exports"),
		"LETHE_PUBLIC_URL":          "http://lethe.test",
		"LETHE_SIGNING_KEY":         signingKey,
		"LETHE_MAIL_API_BASE":       mail.URL(),
		"LETHE_MAILGUN_API_KEY":     "key-intake",
		"LETHE_DEMO_DATABASE_URL":   demoURL,
		"LETHE_DEMO_HASH_KEY":       "intake-tenant-hash-key-0123456789abcdef",
		"LETHE_CONFIG":              cfgFile,
	}
	for k, v := range s.env {
		t.Setenv(k, v)
	}
	s.cfg, err = config.Load()
	require.NoError(t, err)
	log := slog.New(counting{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), s.retries})
	s.deps, err = app.Connect(ctx, s.cfg, log, app.All)
	require.NoError(t, err)
	t.Cleanup(s.deps.Close)
	_, err = s.deps.Store.Migrate(ctx)
	require.NoError(t, err)
	require.NoError(t, s.deps.Bus.EnsureTopics(ctx, append(bus.CoreTopics(), bus.CommandTopic("database"))...))
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
		svc = s.deps.Requests()
	}
	return &intake.Intake{Bus: s.deps.Bus, Requests: svc, Store: svc.Store, SigningKey: signingKey, Log: s.deps.Log}
}

// run starts one part in this process; the returned function stops it and waits until it has.
func (s *stack) run(name string, part func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- part(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("%s: %v", name, err)
		}
	}
	s.t.Cleanup(stop)
	return stop
}

// runLifecycle starts the worker, the bridge and the database connector's runner.
func (s *stack) runLifecycle() {
	s.run("worker", s.deps.RunWorker)
	s.run("bridge", s.deps.RunBridge)
	s.run("connector", func(ctx context.Context) error { return s.deps.RunConnector(ctx, "database") })
}

// publish writes a message that must match its schema.
func (s *stack) publish(topic string, msg any) {
	s.t.Helper()
	require.NoError(s.t, s.deps.Bus.Publish(context.Background(), topic, "k", msg))
}

// publishRaw writes bytes as they are, for messages Lethe must refuse.
func (s *stack) publishRaw(topic string, value []byte) {
	s.t.Helper()
	require.NoError(s.t, s.deps.Bus.PublishRaw(context.Background(), topic, "k", value))
}

// committed is the group's committed offset on partition 0 of topic (-1 when none).
func (s *stack) committed(group, topic string) int64 {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(s.deps.Bus.Brokers()...)}
	real := s.prefix + topic
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: s.prefix + group, Topics: map[string][]int{real: {0}}})
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
func (s *stack) deadLetters(topic string, want int) []bus.DeadLetter {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.deps.Bus.Brokers(), Topic: s.prefix + bus.TopicDLQ, Partition: 0,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []bus.DeadLetter
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		require.NoError(s.t, err, "reading dead letters after %d of %d", len(out), want)
		var dl bus.DeadLetter
		require.NoError(s.t, json.Unmarshal(m.Value, &dl))
		if dl.SourceTopic == s.prefix+topic {
			out = append(out, dl)
		}
	}
	return out
}

// count runs a count(*) query on Lethe's database.
func (s *stack) count(q string, args ...any) int {
	s.t.Helper()
	var n int
	require.NoError(s.t, s.deps.Store.Pool.QueryRow(context.Background(), q, args...).Scan(&n))
	return n
}

// workflowExists reports whether Temporal knows a workflow with this id.
func (s *stack) workflowExists(id string) bool {
	s.t.Helper()
	_, err := s.deps.Temporal.DescribeWorkflowExecution(context.Background(), id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false
	}
	require.NoError(s.t, err)
	return true
}

// intakeMessage is a lethe.request.intake v1 message as a sending service writes it.
type intakeMessage struct {
	Schema     string            `json:"schema"`
	Version    int               `json:"version"`
	RequestID  string            `json:"request_id,omitempty"`
	TenantID   string            `json:"tenant_id"`
	Type       string            `json:"type"`
	Subject    bus.Subject       `json:"subject"`
	ReceivedAt *time.Time        `json:"received_at,omitempty"`
	Regime     string            `json:"regime,omitempty"`
	Country    string            `json:"country,omitempty"`
	Channel    string            `json:"channel,omitempty"`
	Changes    map[string]string `json:"changes,omitempty"`
}

func newIntake(id, tenant, typ, email string) intakeMessage {
	return intakeMessage{Schema: "lethe.request.intake", Version: 1, RequestID: id, TenantID: tenant, Type: typ,
		Subject: bus.Subject{Email: email}}
}

// consentMessage is a lethe.consent.change v1 message.
type consentMessage struct {
	Schema    string      `json:"schema"`
	Version   int         `json:"version"`
	TenantID  string      `json:"tenant_id"`
	Subject   bus.Subject `json:"subject"`
	Purpose   string      `json:"purpose"`
	Granted   bool        `json:"granted"`
	ChangedAt time.Time   `json:"changed_at"`
	Source    string      `json:"source"`
}

func newConsent(tenant, email, purpose string, granted bool, at time.Time) consentMessage {
	return consentMessage{Schema: "lethe.consent.change", Version: 1, TenantID: tenant, Subject: bus.Subject{Email: email},
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
