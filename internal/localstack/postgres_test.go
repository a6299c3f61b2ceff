package localstack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lethe-privacy/lethe/internal/testenv"
)

func startPostgres(t *testing.T, dir string) *Postgres {
	t.Helper()
	if _, err := postgresBinDir(); err != nil {
		testenv.Unavailable(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := &syncBuffer{}
	p, err := StartPostgres(ctx, PostgresOptions{DataDir: dir, Log: log})
	if err != nil {
		t.Fatalf("%v\nserver output:\n%s", err, log)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

func pgQuery(t *testing.T, url, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var out string
	if !strings.HasPrefix(sql, "SELECT") && !strings.Contains(sql, "RETURNING") {
		_, err = conn.Exec(ctx, sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return ""
	}
	if err := conn.QueryRow(ctx, sql, args...).Scan(&out); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func TestPostgresServesAndSurvivesRestarts(t *testing.T) {
	dir := filepath.Join(serviceDir(t), "pg")
	p := startPostgres(t, dir)
	ctx := context.Background()

	if got := pgQuery(t, p.URL("postgres"), "SELECT current_setting('server_encoding') || ' ' || current_setting('listen_addresses')"); got != "UTF8 127.0.0.1" {
		t.Fatalf("encoding and listen address = %q", got)
	}
	if os.Geteuid() == 0 {
		if got := pgQuery(t, p.URL("postgres"), "SELECT current_setting('data_directory')"); got != dir {
			t.Fatalf("data_directory = %q, want %q", got, dir)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Fatal("running as root, the data directory should belong to the postgres user")
		}
	}
	for range 2 { // the second call finds it
		if err := p.EnsureDatabase(ctx, "lethe-app"); err != nil {
			t.Fatal(err)
		}
	}
	app := p.URL("lethe-app")
	pgQuery(t, app, "CREATE TABLE kept (v text)")
	pgQuery(t, app, "INSERT INTO kept VALUES ('after clean stop') RETURNING v")

	// A clean stop and a start over the same directory keep the data.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	p = startPostgres(t, dir)
	app = p.URL("lethe-app")
	if got := pgQuery(t, app, "SELECT string_agg(v, ',') FROM kept"); got != "after clean stop" {
		t.Fatalf("after restart: %q", got)
	}

	// While it runs, a second server on the same directory is refused with a clear message.
	_, err := StartPostgres(ctx, PostgresOptions{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "already running on "+dir) {
		t.Fatalf("second server on a running directory: err = %v", err)
	}

	// What the parent-death signal does when Lethe dies: the postmaster is killed outright and
	// leaves its lock file behind. The next run must still start.
	pgQuery(t, app, "INSERT INTO kept VALUES ('before kill') RETURNING v")
	if err := syscall.Kill(p.proc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
		t.Fatalf("expected the killed server's lock file to remain: %v", err)
	}
	p = startPostgres(t, dir)
	if got := pgQuery(t, p.URL("lethe-app"), "SELECT string_agg(v, ',' ORDER BY v) FROM kept"); got != "after clean stop,before kill" {
		t.Fatalf("after kill and restart: %q", got)
	}
}

func TestPostgresStalePidOfAnotherProcess(t *testing.T) {
	dir := filepath.Join(serviceDir(t), "pg")
	p := startPostgres(t, dir)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	// After a reboot the recorded pid can belong to any live process of the server's user;
	// PostgreSQL alone would then refuse to start.
	cred, err := postgresCredential()
	if err != nil {
		t.Fatal(err)
	}
	other := exec.Command("cat")
	other.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	stdin, err := other.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = other.Wait() }()
	pid := []byte(strings.Join([]string{strconv.Itoa(other.Process.Pid), dir, "0", "1", "", "127.0.0.1", "0 0", "ready", ""}, "\n"))
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), pid, 0o600); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := os.Chown(filepath.Join(dir, "postmaster.pid"), int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	p = startPostgres(t, dir)
	if got := pgQuery(t, p.URL("postgres"), "SELECT 'up'"); got != "up" {
		t.Fatal(got)
	}
}

func TestCheckSearchable(t *testing.T) {
	private := filepath.Join(serviceDir(t), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	other := &syscall.Credential{Uid: 54321, Gid: 54321}
	err := checkSearchable(filepath.Join(private, "pg"), other)
	if err == nil || !strings.Contains(err.Error(), "chmod o+x "+private) {
		t.Fatalf("unreachable directory: err = %v", err)
	}
	if err := os.Chmod(private, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := checkSearchable(filepath.Join(private, "pg"), other); err != nil {
		t.Fatalf("reachable directory: %v", err)
	}
}
