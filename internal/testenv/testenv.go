// Package testenv gives integration tests the real backing services that deploy/test.sh starts:
// PostgreSQL, an Apache Kafka broker and the Temporal CLI dev server.
//
// Outside CI a test whose service is not configured is skipped with a hint; under CI=true it
// fails, so CI can never pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/lethe-privacy/lethe/internal/store"
)

// Environment variables set by deploy/test.sh.
const (
	EnvDatabaseURL  = "LETHE_TEST_DATABASE_URL"  // admin URL of a PostgreSQL server
	EnvKafkaBrokers = "LETHE_TEST_KAFKA_BROKERS" // comma-separated host:port list
	EnvTemporalBin  = "LETHE_TEMPORAL_BIN"       // path to the temporal CLI (default ./bin/temporal)
)

// Unavailable skips a test whose prerequisite is missing on this machine, except under CI,
// where it fails, so CI can never pass by skipping.
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func require(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		Unavailable(t, fmt.Sprintf("%s is not set: run the suite through deploy/test.sh", env))
	}
	return v
}

// Suffix returns a short random hex string for unique names (databases, topics, groups).
func Suffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PostgresURL creates a fresh, empty database for this test and returns its URL; the database
// is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := require(t, EnvDatabaseURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	name := "t_" + Suffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvDatabaseURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Store opens a fresh database for this test with Lethe's migrations applied.
func Store(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, PostgresURL(t), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// KafkaBrokers returns the addresses of the real Apache Kafka broker.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	return strings.Split(require(t, EnvKafkaBrokers), ",")
}

var (
	temporalOnce sync.Once
	temporalSrv  *testsuite.DevServer
	temporalErr  error
)

// TemporalBinary returns the path of the pinned Temporal CLI built by deploy/ into ./bin.
func TemporalBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvTemporalBin); p != "" {
		return p
	}
	p := filepath.Join(RepoRoot(), "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		Unavailable(t, fmt.Sprintf("Temporal CLI not found at %s: run deploy/test.sh (it builds it)", p))
	}
	return p
}

// Temporal starts the real Temporal dev server once per test binary (it is stopped by
// Stop in TestMain, or when the process exits) and returns a client for the default namespace.
func Temporal(t testing.TB) client.Client {
	t.Helper()
	bin := TemporalBinary(t)
	temporalOnce.Do(func() {
		temporalSrv, temporalErr = testsuite.StartDevServer(context.Background(), testsuite.DevServerOptions{
			ExistingPath: bin,
			LogLevel:     "error",
			Stdout:       io.Discard, // its banner is noise in test output
			ClientOptions: &client.Options{
				Namespace: "default",
				Logger:    quietLogger{},
			},
			ExtraArgs: []string{"--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"},
		})
	})
	if temporalErr != nil {
		t.Fatalf("starting Temporal dev server: %v", temporalErr)
	}
	c, err := client.Dial(client.Options{HostPort: temporalSrv.FrontendHostPort(), Namespace: "default", Logger: quietLogger{}})
	if err != nil {
		t.Fatalf("dialing Temporal dev server: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TemporalHostPort returns the frontend address of the shared dev server (starting it if needed).
func TemporalHostPort(t testing.TB) string {
	t.Helper()
	Temporal(t)
	return temporalSrv.FrontendHostPort()
}

// Main runs the tests and stops the shared services afterwards; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if temporalSrv != nil {
		_ = temporalSrv.Stop()
	}
	os.Exit(code)
}

// RepoRoot is the module root, found from this source file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// quietLogger keeps the Temporal client's informational chatter out of test output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(msg string, kv ...interface{}) {
	fmt.Fprintln(os.Stderr, append([]interface{}{"temporal client:", msg}, kv...)...)
}
