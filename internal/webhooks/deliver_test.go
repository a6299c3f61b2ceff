package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/connectors/webhook"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/webhooks"
	"github.com/lethe-privacy/lethe/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const secret = "whsec-0123456789abcdef-salon"

// receiver is a webhook endpoint that keeps what it was sent and answers with status(n) for
// the n-th request (1-based).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status func(n int) int
	seen   chan struct{}
}

type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	r := &receiver{status: status, seen: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{time.Now(), req.Header.Clone(), body})
		n := len(r.got)
		r.mu.Unlock()
		w.WriteHeader(r.status(n))
		r.seen <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			defer r.mu.Unlock()
			return append([]received(nil), r.got...)
		}
		r.mu.Unlock()
		select {
		case <-r.seen:
		case <-time.After(2 * time.Minute):
			t.Fatalf("the receiver got %d requests, want %d", len(r.got), n)
		}
	}
}

// env is one deployment: a fresh database and topics, and the salon tenant subscribed to url.
type env struct {
	t      *testing.T
	store  *store.Store
	bus    *bus.Bus
	prefix string
	cfg    config.Config
}

func newEnv(t *testing.T, url, delivery string) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: testenv.Store(t), prefix: "webhooks-" + testenv.Suffix() + "."}
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t), Partitions: 1, TopicPrefix: e.prefix, Logger: slog.Default()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureTopics(ctx, bus.TopicEvents, bus.TopicDLQ))
	e.bus = b
	e.cfg = loadConfig(t, fmt.Sprintf(`
webhooks: {allow_private: true%s}
tenants:
  - id: salon
    regime: gdpr
    country: DE
    dpo_email: dpo@salon.example
    webhooks:
      - name: zapier
        url: %s
        events: ["request.*", "breach.opened"]
        secret: {env: SALON_WEBHOOK_SECRET}
`, delivery, url))
	return e
}

func loadConfig(t *testing.T, yaml string) config.Config {
	t.Helper()
	cfg := config.Defaults()
	require.NoError(t, config.Parse([]byte(yaml), &cfg))
	env := map[string]string{"SALON_WEBHOOK_SECRET": secret, "LETHE_SIGNING_KEY": strings.Repeat("k", 32),
		"DATABASE_URL": "postgres://localhost/lethe", "LETHE_KAFKA_BROKERS": "127.0.0.1:9092"}
	require.NoError(t, config.Resolve(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	return cfg
}

// start runs a delivery process until the test ends or stop is called.
func (e *env) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	d, err := webhooks.New(ctx, webhooks.Deliverer{Bus: e.bus, Store: e.store, Tenants: e.cfg.Tenants, Cfg: e.cfg.Webhooks, Log: slog.Default()})
	require.NoError(e.t, err)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(e.t, <-done)
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) publish(ev bus.Event) {
	e.t.Helper()
	require.NoError(e.t, e.bus.Publish(context.Background(), bus.TopicEvents, ev.RequestID, ev))
}

func event(id, typ string) bus.Event {
	return bus.Event{Schema: schemas.Event, Version: schemas.Version, ID: id, Type: typ, TenantID: "salon",
		RequestID: "R-" + id, Status: "completed", OccurredAt: time.Now().UTC().Truncate(time.Second), Data: map[string]any{"due_date": "2026-03-01"}}
}

// deliveries are the salon's deliveries as the CLI lists them.
func (e *env) deliveries(state string) []store.Delivery {
	e.t.Helper()
	ds, err := e.store.Webhooks().List(context.Background(), store.DeliveryFilter{TenantID: "salon", State: state})
	require.NoError(e.t, err)
	return ds
}

func (e *env) audit(action string) []store.Event {
	e.t.Helper()
	evs, err := e.store.Audit().List(context.Background(), store.AuditFilter{TenantID: "salon", Action: action})
	require.NoError(e.t, err)
	return evs
}

// A delivery is the event as published, signed so that OpenSSL and the README's Go, Python and
// JavaScript snippets verify it; an event the subscription does not want is not sent; the
// delivery is listed delivered and in the audit trail.
func TestDeliveryIsSignedAndVerified(t *testing.T) {
	r := newReceiver(t, func(int) int { return http.StatusNoContent })
	e := newEnv(t, r.URL+"/hooks/lethe", "")
	e.start()
	e.publish(event("ev-unwanted-"+testenv.Suffix(), "consent.recorded"))
	id := "ev-" + testenv.Suffix()
	e.publish(event(id, "request.status_changed"))
	got := r.wait(t, 1)[0]

	require.NoError(t, schemas.ValidateAs(schemas.Event, got.body), "the body is a lethe.event")
	var ev bus.Event
	require.NoError(t, json.Unmarshal(got.body, &ev))
	require.Equal(t, id, ev.ID, "the first delivery is the wanted event: the unwanted one was not sent")
	require.Equal(t, "request.status_changed", got.header.Get(webhooks.EventHeader))
	require.Equal(t, id+"/zapier", got.header.Get(webhooks.DeliveryHeader))

	header := got.header.Get(webhook.SignatureHeader)
	m := regexp.MustCompile(`^t=(\d+),v1=([0-9a-f]{64})$`).FindStringSubmatch(header)
	require.NotNil(t, m, "Lethe-Signature is t=...,v1=...: %q", header)
	require.Equal(t, m[2], testenv.OpenSSLHMAC(t, secret, m[1]+"."+string(got.body)), "OpenSSL computes the same HMAC")

	for _, lang := range []string{"go", "python", "js"} {
		t.Run(lang, func(t *testing.T) {
			require.True(t, runSnippet(t, lang, secret, header, got.body), "the README's %s snippet verifies the delivery", lang)
			require.False(t, runSnippet(t, lang, secret, header, append(bytes.Clone(got.body), ' ')), "and refuses a changed body")
			require.False(t, runSnippet(t, lang, "another-secret-0123456789", header, got.body), "and another secret")
		})
	}

	require.Eventually(t, func() bool { return len(e.deliveries(store.DeliveryDelivered)) == 1 }, 90*time.Second, 20*time.Millisecond)
	d := e.deliveries("")[0]
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, http.StatusNoContent, d.LastStatus)
	trail := e.audit("webhook.delivered")
	require.Len(t, trail, 1)
	require.Equal(t, "R-"+id, trail[0].RequestID)
	require.Equal(t, "zapier", trail[0].Detail["subscription"])
}

// A failing endpoint is tried max_attempts times, each wait twice the one before, and then the
// delivery is dead-lettered: on lethe.dlq with the reason, listed dead, and in the audit trail.
func TestFailingDeliveryBacksOffThenIsDeadLettered(t *testing.T) {
	r := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	e := newEnv(t, r.URL, ", max_attempts: 3, backoff: 150ms, max_backoff: 1s, poll: 20ms")
	e.start()
	id := "ev-" + testenv.Suffix()
	e.publish(event(id, "request.status_changed"))
	got := r.wait(t, 3)

	for i, min := range []time.Duration{150 * time.Millisecond, 300 * time.Millisecond} {
		gap := got[i+1].at.Sub(got[i].at)
		require.GreaterOrEqual(t, gap, min, "wait before attempt %d", i+2)
	}
	dl := e.deadLetter(t)
	require.Contains(t, dl.Reason, "gave up after 3 attempts")
	require.Contains(t, dl.Reason, "answered 503")
	require.Equal(t, e.prefix+bus.TopicEvents, dl.SourceTopic)
	require.NotNil(t, dl.Value)
	require.NoError(t, schemas.ValidateAs(schemas.Event, []byte(*dl.Value)), "the dead letter carries the event")

	require.Eventually(t, func() bool { return len(e.deliveries(store.DeliveryDead)) == 1 }, 90*time.Second, 20*time.Millisecond)
	d := e.deliveries(store.DeliveryDead)[0]
	require.Equal(t, 3, d.Attempts)
	require.Contains(t, d.LastError, "answered 503")
	require.Len(t, e.audit("webhook.dead_lettered"), 1)
	r.mu.Lock()
	require.Len(t, r.got, 3, "no attempt after the last")
	r.mu.Unlock()

	// Sent again by hand, it is delivered once the endpoint is back.
	r.status = func(int) int { return http.StatusOK }
	require.NoError(t, e.store.Webhooks().Redeliver(context.Background(), d.ID, time.Now()))
	r.wait(t, 4)
	require.Eventually(t, func() bool { return len(e.deliveries(store.DeliveryDelivered)) == 1 }, 90*time.Second, 20*time.Millisecond)
}

// A retry waiting when the delivery process stops is made by the next one.
func TestRetryOutlivesARestart(t *testing.T) {
	r := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	e := newEnv(t, r.URL, ", backoff: 200ms, poll: 20ms")
	stop := e.start()
	e.publish(event("ev-"+testenv.Suffix(), "request.status_changed"))
	r.wait(t, 1)
	require.Eventually(t, func() bool { d := e.deliveries(""); return len(d) == 1 && d[0].Attempts == 1 }, 90*time.Second, 20*time.Millisecond)
	stop()

	e.start()
	r.wait(t, 2)
	require.Eventually(t, func() bool { return len(e.deliveries(store.DeliveryDelivered)) == 1 }, 90*time.Second, 20*time.Millisecond)
	require.Equal(t, 2, e.deliveries("")[0].Attempts)
}

// With private addresses not allowed, a subscription to a loopback URL stops the start naming it.
func TestPrivateSubscriptionIsRefused(t *testing.T) {
	cfg := config.Defaults()
	require.NoError(t, config.Parse([]byte(`
tenants:
  - id: salon
    regime: gdpr
    dpo_email: dpo@salon.example
    webhooks: [{name: zapier, url: "http://127.0.0.1:9/hook", secret: {env: S}}]
`), &cfg))
	env := map[string]string{"S": secret, "LETHE_SIGNING_KEY": strings.Repeat("k", 32), "DATABASE_URL": "postgres://localhost/lethe", "LETHE_KAFKA_BROKERS": "127.0.0.1:9092"}
	err := config.Resolve(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.ErrorContains(t, err, "tenants[salon].webhooks[zapier].url: refusing to reach 127.0.0.1: not a public address")

	// A host name is resolved when the delivery process starts.
	guarded := webhooks.Deliverer{Tenants: []config.Tenant{{ID: "salon", Webhooks: []config.Webhook{{Name: "zapier", URL: "http://localhost:9/hook"}}}},
		Cfg: config.DefaultWebhooks()}
	_, err = webhooks.New(context.Background(), guarded)
	require.ErrorContains(t, err, "tenants[salon].webhooks[zapier].url: refusing to reach localhost: it resolves to")
}

func (e *env) deadLetter(t *testing.T) protocol.DeadLetter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: e.bus.Brokers(), Topic: e.prefix + bus.TopicDLQ, Partition: 0, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	m, err := rd.ReadMessage(ctx)
	require.NoError(t, err, "reading the dead letter")
	require.NoError(t, schemas.ValidateAs(schemas.DLQ, m.Value))
	var dl protocol.DeadLetter
	require.NoError(t, json.Unmarshal(m.Value, &dl))
	return dl
}

// snippet is the README's code block in lang (```go, ```python, ```js).
func snippet(t *testing.T, lang string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "connectors", "webhook", "README.md"))
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(string(raw))
	require.NotNil(t, m, "README has no %s block", lang)
	return m[1]
}

// runSnippet runs the README's snippet in lang on a delivery and reports whether it verified.
func runSnippet(t *testing.T, lang, key, header string, body []byte) bool {
	t.Helper()
	dir := t.TempDir()
	var cmd *exec.Cmd
	switch lang {
	case "go":
		code := strings.Replace(snippet(t, "go"), "package lethehook", "package main", 1)
		main := "package main\n\nimport (\n\t\"io\"\n\t\"os\"\n\t\"time\"\n)\n\nfunc main() {\n\tbody, _ := io.ReadAll(os.Stdin)\n\tif !Verify(os.Getenv(\"KEY\"), os.Getenv(\"SIG\"), body, time.Now()) {\n\t\tos.Exit(1)\n\t}\n}\n"
		write(t, dir, "verify.go", code)
		write(t, dir, "main.go", main)
		write(t, dir, "go.mod", "module snippet\n\ngo 1.22\n")
		build := exec.Command("go", "build", "-o", "verify", ".")
		build.Dir, build.Env = dir, append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building the Go snippet: %v\n%s", err, out)
		}
		cmd = exec.Command(filepath.Join(dir, "verify"))
	case "python":
		py := os.Getenv("LETHE_PYTHON")
		if py == "" {
			testenv.Unavailable(t, "LETHE_PYTHON (the repository's Python venv) is not set")
		}
		write(t, dir, "verify.py", snippet(t, "python")+"\nimport os, sys\nsys.exit(0 if verify(os.environ['KEY'].encode(), os.environ['SIG'], sys.stdin.buffer.read()) else 1)\n")
		cmd = exec.Command(py, filepath.Join(dir, "verify.py"))
	case "js":
		if _, err := exec.LookPath("node"); err != nil {
			testenv.Unavailable(t, "node is not installed")
		}
		write(t, dir, "verify.js", snippet(t, "js")+"\nconst chunks = [];\nprocess.stdin.on('data', (c) => chunks.push(c)).on('end', () => process.exit(verify(process.env.KEY, process.env.SIG, Buffer.concat(chunks)) ? 0 : 1));\n")
		cmd = exec.Command("node", filepath.Join(dir, "verify.js"))
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KEY="+key, "SIG="+header)
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return true
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return false
	}
	t.Fatalf("running the %s snippet: %v\n%s", lang, err, out)
	return false
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
}

// lethe.events also carries lethe.consent.state, which no subscription takes: it is passed
// over, not dead-lettered, so the first dead letter is the event that really failed.
func TestConsentStatesArePassedOver(t *testing.T) {
	r := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	e := newEnv(t, r.URL, ", max_attempts: 1, backoff: 150ms, max_backoff: 1s, poll: 20ms")
	e.start()
	state := []byte(`{"schema":"lethe.consent.state","version":1,"id":"consent:7","tenant_id":"salon","subject_ref":"` + strings.Repeat("ab", 32) +
		`","purpose":"marketing_email","granted":false,"change":{"granted":false,"source":"myaccount","changed_at":"2026-03-01T09:30:00Z"},"occurred_at":"2026-03-01T09:30:01Z"}`)
	require.NoError(t, e.bus.Publish(context.Background(), bus.TopicEvents, "s", json.RawMessage(state)))
	e.publish(event("ev-"+testenv.Suffix(), "request.status_changed"))
	dl := e.deadLetter(t)
	require.NotNil(t, dl.Value)
	require.NoError(t, schemas.ValidateAs(schemas.Event, []byte(*dl.Value)), "the first dead letter is the undeliverable event, not the consent state: %s", dl.Reason)
}
