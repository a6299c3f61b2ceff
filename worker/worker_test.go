package worker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/worker"
	"github.com/lethe-privacy/lethe/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The self-check workflow runs to completion on a real worker against the real dev server,
// and its activity really reaches PostgreSQL and Kafka.
func TestSelfCheckWorkflowRunsOnWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := store.Open(ctx, testenv.PostgresURL(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t), Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := testenv.Temporal(t)

	queue := "selfcheck-" + testenv.Suffix()
	w := worker.New(c, queue, &activities.Activities{Store: s, Bus: b})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "selfcheck-" + testenv.Suffix(), TaskQueue: queue},
		workflows.SelfCheckWorkflow, workflows.SelfCheckInput{RequestedBy: "worker test"})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.SelfCheckResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if res.Checks["postgres"] != "ok" || res.Checks["kafka"] != "ok" {
		t.Fatalf("checks = %v, want postgres and kafka ok", res.Checks)
	}
	var actor string
	if err := s.Pool.QueryRow(ctx, `SELECT actor FROM audit_events WHERE action = 'worker.self_check'`).Scan(&actor); err != nil {
		t.Fatalf("self-check not in the audit trail: %v", err)
	}
	if actor != "worker test" {
		t.Fatalf("audit actor = %q", actor)
	}
}
