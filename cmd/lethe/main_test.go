package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/schemas"
)

// The test binary doubles as the lethe binary, so start-up failures are seen exactly as a user
// sees them: exit status and stderr.
func TestMain(m *testing.M) {
	if os.Getenv("LETHE_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	testenv.Main(m)
}

func runLethe(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"LETHE_TEST_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestBadConfigurationFailsWithOneLine(t *testing.T) {
	pg := testenv.PostgresURL(t)
	kafka := strings.Join(testenv.KafkaBrokers(t), ",")
	cfgFile := filepath.Join(t.TempDir(), "lethe.yaml")
	os.WriteFile(cfgFile, []byte("tenants: [{id: salon, regime: gdpr, tokens: [{role: admin, env: SALON_ADMIN_TOKEN}]}]\n"), 0o600)
	good := map[string]string{"LETHE_SIGNING_KEY": "main-test-signing-key-0123456789abcdef", "DATABASE_URL": pg, "LETHE_KAFKA_BROKERS": kafka, "LETHE_TEMPORAL_HOSTPORT": "127.0.0.1:1", "LETHE_HTTP_ADDR": "127.0.0.1:0"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unreachable broker", with("LETHE_KAFKA_BROKERS", "127.0.0.1:1"), "lethe: kafka.brokers (LETHE_KAFKA_BROKERS): cannot reach 127.0.0.1:1"},
		{"bad database URL", with("DATABASE_URL", "postgres://lethe:hunter2-secret@127.0.0.1:1/lethe?connect_timeout=3"), "lethe: database.url (DATABASE_URL): connecting to PostgreSQL at 127.0.0.1:1"},
		{"garbled database URL", with("DATABASE_URL", "mysql://x"), "lethe: database.url (DATABASE_URL): not a postgres:// URL"},
		{"missing secret", with("LETHE_CONFIG", cfgFile), "lethe: tenants[salon].tokens[0]: environment variable SALON_ADMIN_TOKEN is not set"},
		{"bad health address", with("LETHE_HEALTH_ADDR", "no-port"), "lethe: http.health_addr (LETHE_HEALTH_ADDR):"},
		{"unreachable Temporal", good, "lethe: temporal.host_port (LETHE_TEMPORAL_HOSTPORT): cannot reach Temporal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runLethe(t, c.env, "serve")
			if code != 1 {
				t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("stderr has %d lines, want one:\n%s", len(lines), stderr)
			}
			if !strings.HasPrefix(lines[0], c.want) {
				t.Fatalf("stderr %q\nwant prefix %q", lines[0], c.want)
			}
			if strings.Contains(stderr, "hunter2-secret") {
				t.Fatal("the database password reached stderr")
			}
		})
	}
}

func TestHelpExplainsCommands(t *testing.T) {
	out, _, code := runLethe(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, c := range []string{"dev", "serve", "worker", "connector", "migrate"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("--help does not list %q:\n%s", c, out)
		}
	}
}

// A remote connector has no runner of Lethe's to create its command topic, and the broker
// does not auto-create topics: migrate --topics must, or every dispatch to it waits out its
// timeout.
func TestMigrateCreatesRemoteConnectorTopics(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	prefix := "migrate-" + testenv.Suffix() + "."
	cfgFile := filepath.Join(t.TempDir(), "lethe.yaml")
	os.WriteFile(cfgFile, []byte(`connectors: [{name: newsletter, type: remote, tenants: ["*"], config: {capabilities: [access, erase]}}]`+"\n"+
		"secrets: {connector_keys: {newsletter: [{id: k1, env: NEWSLETTER_KEY}]}}\n"), 0o600)
	secret := bytes.Repeat([]byte{7}, envelope.KeySize)
	env := map[string]string{
		"NEWSLETTER_KEY": base64.StdEncoding.EncodeToString(secret),
		"LETHE_CONFIG":   cfgFile, "DATABASE_URL": testenv.PostgresURL(t), "LETHE_KAFKA_BROKERS": strings.Join(brokers, ","),
		"LETHE_KAFKA_TOPIC_PREFIX": prefix, "LETHE_SIGNING_KEY": "migrate-signing-key-0123456789abcdef",
	}
	if _, stderr, code := runLethe(t, env, "migrate", "--topics"); code != 0 {
		t.Fatalf("migrate --topics exit %d:\n%s", code, stderr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := protocol.CommandTopic("newsletter")
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{prefix + topic}})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("topic %s after migrate --topics: %+v", prefix+topic, md.Topics)
	}

	// A dispatch reaches the remote connector's consumer.
	b, err := bus.Open(ctx, bus.Config{Brokers: brokers, TopicPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cmd := protocol.Command{
		Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion, ID: "R-REMOTE:newsletter:erase:1",
		IdempotencyKey: "R-REMOTE:newsletter:erase", RequestID: "R-REMOTE", TenantID: "salon", Connector: "newsletter",
		Action: "erase", TaskToken: "dG9rZW4=", IssuedAt: time.Now().UTC(),
	}
	k, err := envelope.NewKey("k1", secret)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := envelope.NewRing(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Seal(ring, &connectors.Subject{Email: "remote@example.com"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, topic, cmd.RequestID, cmd); err != nil {
		t.Fatalf("dispatching to the remote connector: %v", err)
	}
	got := make(chan string, 1)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go b.Consume(cctx, bus.ConsumerOptions{Group: "newsletter", Topic: topic, Schemas: []string{schemas.ConnectorCommand}},
		func(_ context.Context, m bus.Message) error {
			var c protocol.Command
			_ = json.Unmarshal(m.Value, &c)
			got <- c.ID
			return nil
		})
	select {
	case id := <-got:
		if id != cmd.ID {
			t.Fatalf("consumed command %q, want %q", id, cmd.ID)
		}
	case <-ctx.Done():
		t.Fatal("the remote connector never received its command")
	}
}

// `lethe connector NAME` serves the instance NAME; a remote instance or an unknown name stops
// it with one line, and so does the configuration form of earlier versions, at any start.
func TestConnectorInstancesAtStart(t *testing.T) {
	dir := t.TempDir()
	current, old := filepath.Join(dir, "lethe.yaml"), filepath.Join(dir, "old.yaml")
	os.WriteFile(current, []byte(`connectors: [{name: newsletter, type: remote, tenants: ["*"], config: {capabilities: [erase]}}]`+"\n"+
		"secrets: {connector_keys: {newsletter: [{id: k1, env: NEWSLETTER_KEY}]}}\n"), 0o600)
	os.WriteFile(old, []byte("connectors:\n  database:\n    dsn_env: X\n"), 0o600)
	env := func(file string) map[string]string {
		return map[string]string{
			"NEWSLETTER_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, envelope.KeySize)),
			"LETHE_CONFIG":   file, "DATABASE_URL": testenv.PostgresURL(t), "LETHE_KAFKA_BROKERS": strings.Join(testenv.KafkaBrokers(t), ","),
			"LETHE_KAFKA_TOPIC_PREFIX": "instances-" + testenv.Suffix() + ".", "LETHE_SIGNING_KEY": "instances-signing-key-0123456789abcdef",
		}
	}
	for _, c := range []struct {
		file string
		args []string
		want string
	}{
		{current, []string{"connector", "newsletter"}, "lethe: connectors[newsletter]: a remote connector is served by its own program, not by lethe connector"},
		{current, []string{"connector", "salon-db"}, `lethe: connectors: no instance named "salon-db" (configured: newsletter)`},
		{old, []string{"serve"}, `connectors: the map form (connectors: {database: {...}}) is no longer read; list instances, each with its type and tenants: connectors: [{name: database, type: database, tenants: ["*"], config: {...}}]`},
	} {
		_, stderr, code := runLethe(t, env(c.file), c.args...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("lethe %s: exit %d, stderr:\n%s\nwant one line with %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}
