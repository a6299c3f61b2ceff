package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailgun/mailgun-go/v4"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/workflows"

	_ "github.com/lethe-privacy/lethe/connectors/database"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is a whole Lethe deployment for one test: its own databases, topic prefix and task
// queue on the shared real PostgreSQL, Kafka and Temporal dev server.
type stack struct {
	t       *testing.T
	cfg     config.Config
	cfgFile string
	env     map[string]string
	deps    *app.Deps
	demo    *pgxpool.Pool
	mail    mailgun.MockServer
	// box keeps the rendered messages, as lethe dev's mailbox does.
	box *mail.Mailbox
}

const hashKey = "e2e-tenant-hash-key-0123456789abcdef"

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{t: t, mail: mailgun.NewMockServer()}
	t.Cleanup(s.mail.Stop)

	demoURL := testenv.PostgresURL(t)
	pool, err := pgxpool.New(ctx, demoURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = demo.Load(ctx, pool, time.Now())
	require.NoError(t, err)
	s.demo = pool

	dir := t.TempDir()
	s.cfgFile = filepath.Join(dir, "lethe.yaml")
	connector := strings.ReplaceAll("\n"+string(demo.ConnectorConfig), "\n", "\n    ")
	require.NoError(t, os.WriteFile(s.cfgFile, []byte(`
tenants:
  - id: salon
    name: Salon Example
    regime: gdpr
    country: DE
    time_zone: Europe/Berlin
    contact_email: privacy@salon.example
    policy: {manual_approval: []}
mail: {domain: mg.salon.example, from: privacy@mg.salon.example}
connectors:
  database:`+connector+"\n"), 0o600))
	s.env = map[string]string{
		"DATABASE_URL":              testenv.PostgresURL(t),
		"LETHE_KAFKA_BROKERS":       strings.Join(testenv.KafkaBrokers(t), ","),
		"LETHE_KAFKA_TOPIC_PREFIX":  "e2e-" + testenv.Suffix() + ".",
		"LETHE_KAFKA_PARTITIONS":    "2",
		"LETHE_TEMPORAL_HOSTPORT":   testenv.TemporalHostPort(t),
		"LETHE_TEMPORAL_TASK_QUEUE": "e2e-" + testenv.Suffix(),
		"LETHE_EXPORTS_DIR":         filepath.Join(dir, "exports"),
		"LETHE_PUBLIC_URL":          "http://lethe.test",
		"LETHE_SIGNING_KEY":         "e2e-signing-key-0123456789abcdef",
		"LETHE_MAIL_API_BASE":       s.mail.URL(),
		"LETHE_MAILGUN_API_KEY":     "key-e2e",
		"LETHE_DEMO_DATABASE_URL":   demoURL,
		"LETHE_DEMO_HASH_KEY":       hashKey,
		"LETHE_CONFIG":              s.cfgFile,
	}
	for k, v := range s.env {
		t.Setenv(k, v)
	}
	s.cfg, err = config.Load()
	require.NoError(t, err)
	s.deps, err = app.Connect(ctx, s.cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), app.All)
	require.NoError(t, err)
	t.Cleanup(s.deps.Close)
	mg, err := s.deps.Mailer()
	require.NoError(t, err)
	s.box = mail.NewMailbox(mg, 100)
	s.deps.Mail = s.box
	_, err = s.deps.Store.Migrate(ctx)
	require.NoError(t, err)
	require.NoError(t, s.deps.Bus.EnsureTopics(ctx, append(bus.CoreTopics(), bus.CommandTopic("database"))...))
	return s
}

// run starts one part (worker, bridge, connector) in this process; the returned function
// stops it and waits until it has.
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

// runAll starts the worker, the bridge and the database connector's runner.
func (s *stack) runAll() {
	s.run("worker", s.deps.RunWorker)
	s.run("bridge", s.deps.RunBridge)
	s.run("connector", func(ctx context.Context) error { return s.deps.RunConnector(ctx, "database") })
}

func (s *stack) submit(typ string, subject bus.Subject) string {
	s.t.Helper()
	id, err := s.deps.Requests().Submit(context.Background(), requests.Submission{
		TenantID: "salon", Type: typ, Subject: subject, IdentityVerified: true, Channel: "api",
	})
	require.NoError(s.t, err)
	return id
}

// await waits for the request's workflow to end and returns its final state.
func (s *stack) await(id string) workflows.RequestState {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var st workflows.RequestState
	err := s.deps.Temporal.GetWorkflow(ctx, id, "").Get(ctx, &st)
	require.NoError(s.t, err, "request %s", id)
	return st
}

func (s *stack) scalar(q string, args ...any) string {
	s.t.Helper()
	var v any
	require.NoError(s.t, s.demo.QueryRow(context.Background(), q, args...).Scan(&v))
	return fmt.Sprint(v)
}

// record writes the workflow's history to $LETHE_RECORD_HISTORY_DIR/<name>.json, for the
// replay tests in workflows/ (run: LETHE_RECORD_HISTORY_DIR=$PWD/workflows/testdata ...).
func (s *stack) record(id, name string) {
	dir := os.Getenv("LETHE_RECORD_HISTORY_DIR")
	if dir == "" {
		return
	}
	s.t.Helper()
	ctx := context.Background()
	it := s.deps.Temporal.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(s.t, err)
		h.Events = append(h.Events, e)
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(s.t, err)
	require.NoError(s.t, os.WriteFile(filepath.Join(dir, name+".json"), raw, 0o644))
}
