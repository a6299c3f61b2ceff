package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// Parts without an HTTP surface of their own (here the bridge) answer /healthz, /readyz and
// /metrics on http.health_addr, so an orchestrator can probe them.
func TestBridgeServesHealthOnHealthAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "bridge", "--log-format", "text")
	cmd.Env = []string{"LETHE_TEST_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"DATABASE_URL=" + testenv.PostgresURL(t), "LETHE_KAFKA_BROKERS=" + strings.Join(testenv.KafkaBrokers(t), ","),
		"LETHE_KAFKA_TOPIC_PREFIX=health-" + testenv.Suffix() + ".", "LETHE_TEMPORAL_HOSTPORT=" + testenv.TemporalHostPort(t),
		"LETHE_SIGNING_KEY=health-signing-key-0123456789abcdef", "LETHE_HEALTH_ADDR=" + addr,
		"LETHE_MAIL_DOMAIN=mg.example.com", "LETHE_MAIL_FROM=privacy@mg.example.com", "LETHE_MAIL_API_BASE=http://127.0.0.1:1/v3",
		"LETHE_MAILGUN_API_KEY=key-health", "LETHE_MAILGUN_WEBHOOK_KEY=webhook-health"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The bridge logs "serving health" once the port is bound; wait for that line, not a timer.
	lines := bufio.NewScanner(stderr)
	var seen []string
	for lines.Scan() && !strings.Contains(lines.Text(), "serving health") {
		seen = append(seen, lines.Text())
	}
	if lines.Err() != nil || !strings.Contains(lines.Text(), "serving health") {
		t.Fatalf("the bridge never served its health address; stderr:\n%s", strings.Join(seen, "\n"))
	}
	go func() {
		for lines.Scan() {
		}
	}()
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("the bridge does not answer on its health address: %v", err)
	}
	defer res.Body.Close()
	var ready api.Readiness
	if err := json.NewDecoder(res.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || ready.Status != "ok" || len(ready.Checks) != 3 {
		t.Fatalf("/readyz = %d %+v, want 200 with PostgreSQL, Kafka and Temporal ok", res.StatusCode, ready)
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		r, err := http.Get("http://" + addr + path)
		if err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", path, r, err)
		}
		r.Body.Close()
	}
}

// migrate --check is what a pod's init container waits on while the migration job runs: exit 3
// naming what is pending, then 0 once migrate has run, without applying anything itself.
func TestMigrateCheckWaitsForTheSchema(t *testing.T) {
	env := map[string]string{"DATABASE_URL": testenv.PostgresURL(t), "LETHE_KAFKA_BROKERS": strings.Join(testenv.KafkaBrokers(t), ","), "LETHE_SIGNING_KEY": "check-signing-key-0123456789abcdef"}
	_, stderr, code := runLethe(t, env, "migrate", "--check")
	if code != 3 || !strings.Contains(stderr, "migrations pending: 0001_init.sql, 0002_connector_tasks.sql") {
		t.Fatalf("migrate --check on an empty database: exit %d, stderr %q; want 3 naming the pending files", code, stderr)
	}
	if _, stderr, code := runLethe(t, env, "migrate", "--check"); code != 3 {
		t.Fatalf("a second check applied something: exit %d %s", code, stderr)
	}
	if _, stderr, code := runLethe(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d %s", code, stderr)
	}
	out, stderr, code := runLethe(t, env, "migrate", "--check")
	if code != 0 || !strings.Contains(out, "database schema is up to date") {
		t.Fatalf("migrate --check after migrate: exit %d, %q %q", code, out, stderr)
	}
}
