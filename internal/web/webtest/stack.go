// Package webtest runs MyAccount on a whole in-process Lethe for tests: the real PostgreSQL,
// Kafka and Temporal dev server of deploy/test.sh, the worker, the bridge, the database
// connector over the demo salon's data, Mailgun's stand-in behind the dev mailbox, and an HTTP
// server with /myaccount and /dev/mailbox mounted as `lethe dev` mounts them.
package webtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailgun/mailgun-go/v4"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/web"

	_ "github.com/lethe-privacy/lethe/connectors/database" // the demo salon's connector
)

// Tenant is the tenant MyAccount serves in the stack.
const Tenant = "salon"

// Stack is one test's Lethe: its own databases, topic prefix and task queue on the shared
// real services.
type Stack struct {
	URL     string // base URL of the HTTP server: URL + "/myaccount"
	Deps    *app.Deps
	Demo    *pgxpool.Pool // the demo salon's database
	Mailbox *mail.Mailbox
	Mailgun mailgun.MockServer
}

// Start builds and runs the stack; everything stops when the test ends.
func Start(t testing.TB) *Stack {
	t.Helper()
	ctx := context.Background()
	s := &Stack{Mailgun: mailgun.NewMockServer()}
	t.Cleanup(s.Mailgun.Stop)

	demoURL := testenv.PostgresURL(t)
	pool, err := pgxpool.New(ctx, demoURL)
	must(t, err)
	t.Cleanup(pool.Close)
	_, err = demo.Load(ctx, pool, time.Now())
	must(t, err)
	s.Demo = pool

	// The listener comes first: its address is the public URL that links in emails use.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	s.URL = "http://" + l.Addr().String()

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "lethe.yaml")
	connector := strings.ReplaceAll("\n"+string(demo.ConnectorConfig), "\n", "\n    ")
	must(t, os.WriteFile(cfgFile, []byte(`
tenants:
  - id: `+Tenant+`
    name: Salon Example
    regime: gdpr
    country: DE
    time_zone: Europe/Berlin
    contact_email: privacy@salon.example
    policy: {manual_approval: []}
mail: {domain: mg.salon.example, from: privacy@mg.salon.example}
connectors:
  database:`+connector+"\n"), 0o600))
	env := map[string]string{
		"DATABASE_URL":              testenv.PostgresURL(t),
		"LETHE_KAFKA_BROKERS":       strings.Join(testenv.KafkaBrokers(t), ","),
		"LETHE_KAFKA_TOPIC_PREFIX":  "web-" + testenv.Suffix() + ".",
		"LETHE_KAFKA_PARTITIONS":    "2",
		"LETHE_TEMPORAL_HOSTPORT":   testenv.TemporalHostPort(t),
		"LETHE_TEMPORAL_TASK_QUEUE": "web-" + testenv.Suffix(),
		"LETHE_EXPORTS_DIR":         filepath.Join(dir, "exports"),
		"LETHE_PUBLIC_URL":          s.URL,
		"LETHE_SIGNING_KEY":         "web-signing-key-0123456789abcdef",
		"LETHE_MAIL_API_BASE":       s.Mailgun.URL(),
		"LETHE_MAILGUN_API_KEY":     "key-web",
		"LETHE_DEMO_DATABASE_URL":   demoURL,
		"LETHE_DEMO_HASH_KEY":       "web-tenant-hash-key-0123456789abcdef",
		"LETHE_CONFIG":              cfgFile,
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.Load()
	must(t, err)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := app.Connect(ctx, cfg, log, app.All)
	must(t, err)
	t.Cleanup(d.Close)
	s.Deps = d
	// As lethe dev does: mail goes to the Mailgun stand-in through the dev mailbox.
	mg, err := d.Mailer()
	must(t, err)
	s.Mailbox = mail.NewMailbox(mg, 500)
	d.Mail = s.Mailbox
	_, err = d.Store.Migrate(ctx)
	must(t, err)
	must(t, d.Bus.EnsureTopics(ctx, append(bus.CoreTopics(), bus.CommandTopic("database"))...))

	s.run(t, "worker", d.RunWorker)
	s.run(t, "bridge", d.RunBridge)
	s.run(t, "connector", func(ctx context.Context) error { return d.RunConnector(ctx, "database") })

	srv := api.New(log, d.Checkers()...)
	must(t, Mount(srv, d, Tenant))
	srv.Handle("GET /dev/mailbox", s.Mailbox.Handler())
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	t.Cleanup(hs.Close)
	return s
}

// Mount mounts MyAccount for tenant the way cmd/lethe does. The request service sends the
// verification codes, so it gets the process's mail sender.
func Mount(srv *api.Server, d *app.Deps, tenant string) error {
	svc := d.Requests()
	m, err := d.Mailer()
	if err != nil {
		return err
	}
	svc.Mail = m
	h := web.MyAccount(svc, tenant, web.Options{
		SigningKey: []byte(d.Cfg.Secrets.SigningKey.Value()),
		Secure:     strings.HasPrefix(d.Cfg.HTTP.PublicURL, "https:"),
		Log:        d.Log,
	})
	srv.Handle("/myaccount", h)
	srv.Handle("/myaccount/", h)
	return nil
}

// run starts one long-lived part in this process and stops it, waiting, when the test ends.
func (s *Stack) run(t testing.TB, name string, part func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- part(ctx) }()
	t.Cleanup(func() {
		cancel()
		// A part stopped while still starting reports the cancellation; that is no failure.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v", name, err)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// codeLine is the line of a verification email that holds the code.
var codeLine = regexp.MustCompile(`(?m)^\s{2,}([A-Za-z0-9-]{4,16})\s*$`)

// CodeFrom finds the code in the text of a verification email.
func CodeFrom(text string) string {
	m := codeLine.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

// LatestCode reads the dev mailbox at base (/dev/mailbox?format=json&to=...) and returns the
// code of the newest verification email for request id, or "" when none arrived yet.
func LatestCode(ctx context.Context, base, to, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/dev/mailbox?format=json&to="+url.QueryEscape(to), nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("reading the dev mailbox: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("reading the dev mailbox: %s", res.Status)
	}
	var msgs []mail.Sent
	if err := json.NewDecoder(res.Body).Decode(&msgs); err != nil {
		return "", fmt.Errorf("decoding the dev mailbox: %w", err)
	}
	for _, m := range msgs { // newest first
		if m.Kind == mail.KindVerificationCode && m.RequestID == id {
			return CodeFrom(m.Text), nil
		}
	}
	return "", nil
}

// AwaitCode polls the dev mailbox until the request's verification email arrives.
func AwaitCode(ctx context.Context, base, to, id string) (string, error) {
	for {
		code, err := LatestCode(ctx, base, to, id)
		if err != nil || code != "" {
			return code, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no verification email for request %s: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
