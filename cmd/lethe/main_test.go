package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/internal/testenv"
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
	good := map[string]string{"DATABASE_URL": pg, "LETHE_KAFKA_BROKERS": kafka, "LETHE_TEMPORAL_HOSTPORT": "127.0.0.1:1", "LETHE_HTTP_ADDR": "127.0.0.1:0"}
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
