package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/localstack"
	"github.com/lethe-privacy/lethe/internal/standin"
)

// tenant is the one tenant of the run: no manual approval, a host app key for assertions.
const tenant = "bench"

// stack is one run's Lethe: its databases, topics, Temporal server and processes.
type stack struct {
	o        Options
	suffix   string
	dir      string
	env      []string
	token    string
	key      []byte // the tenant's assertion key
	url      string // the serve process
	temporal *localstack.Temporal
	lethe    *app.Stack
	demos    []*pgxpool.Pool
	dbs      []string // every database made, dropped at the end
	mail     *mailTap
	standin  *standin.Server
	procs    []*proc
	subjects []string // customers' emails, one per request
	closers  []func()
}

// proc is one lethe process of the run.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	// pprof is its profiling address, when profiled.
	pprof   string
	done    chan struct{}
	err     error
	stopped bool
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func startStack(ctx context.Context, o Options) (st *stack, err error) {
	st = &stack{o: o, suffix: random(4), token: "bench_" + random(20), key: []byte(random(24))}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	if st.dir, err = os.MkdirTemp("", "lethe-bench-"); err != nil {
		return nil, err
	}
	st.closers = append(st.closers, func() { _ = os.RemoveAll(st.dir) })

	step(o, "starting the Temporal dev server")
	if st.temporal, err = localstack.StartTemporal(ctx, localstack.TemporalOptions{Binary: o.TemporalBin}); err != nil {
		return nil, err
	}
	st.closers = append(st.closers, func() { _ = st.temporal.Stop() })

	// Every request has a customer of its own, in every connector's database, without
	// bookings or invoices, so no erasure is blocked and each change is counted per row.
	customers := o.Requests + warmup + 4
	letheDB, err := st.createDB(ctx, "")
	if err != nil {
		return nil, err
	}
	step(o, "loading %d customers into each of %d connector databases", customers, o.Connectors)
	for i := range o.Connectors {
		u, err := st.createDB(ctx, "_c"+strconv.Itoa(i+1))
		if err != nil {
			return nil, err
		}
		pool, err := pgxpool.New(ctx, u)
		if err != nil {
			return nil, err
		}
		st.demos = append(st.demos, pool)
		st.closers = append(st.closers, pool.Close)
		if _, err := demo.Generate(ctx, pool, time.Now(), demo.GenerateOptions{Customers: customers}); err != nil {
			return nil, err
		}
		if err := demo.TrackChanges(ctx, pool); err != nil {
			return nil, err
		}
		st.env = append(st.env, dsnEnv(i)+"="+u)
	}
	if st.subjects, err = emails(ctx, st.demos[0]); err != nil {
		return nil, err
	}

	st.standin = standin.New()
	st.closers = append(st.closers, st.standin.Stop)
	if st.mail, err = newMailTap(st.standin.URL()); err != nil {
		return nil, err
	}
	st.closers = append(st.closers, st.mail.close)
	port, err := localstack.FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	st.url = "http://" + addr
	cfgFile := filepath.Join(st.dir, "lethe.yaml")
	if err := os.WriteFile(cfgFile, []byte(st.config()), 0o600); err != nil {
		return nil, err
	}
	st.env = append(st.env,
		"LETHE_CONFIG="+cfgFile, "DATABASE_URL="+letheDB, "LETHE_HTTP_ADDR="+addr, "LETHE_PUBLIC_URL="+st.url,
		"LETHE_KAFKA_BROKERS="+strings.Join(o.Brokers, ","), "LETHE_KAFKA_TOPIC_PREFIX=bench-"+st.suffix+".",
		"LETHE_KAFKA_PARTITIONS="+strconv.Itoa(o.Partitions), "LETHE_TEMPORAL_HOSTPORT="+st.temporal.HostPort(),
		"LETHE_TEMPORAL_TASK_QUEUE=bench-"+st.suffix, "LETHE_EXPORTS_DIR="+filepath.Join(st.dir, "exports"),
		"LETHE_SIGNING_KEY=bench-signing-key-"+random(16), "LETHE_MAIL_API_BASE="+st.mail.url(),
		"LETHE_MAILGUN_API_KEY=key-bench", "LETHE_DEMO_HASH_KEY=bench-tenant-hash-key-"+random(16),
		"BENCH_ADMIN_TOKEN="+st.token, "BENCH_ASSERTION_KEY="+string(st.key),
	)
	if err := st.prepare(ctx); err != nil {
		return nil, err
	}
	if err := st.startProcs(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// dsnEnv is the variable holding connector instance i's database URL.
func dsnEnv(i int) string { return "BENCH_DB_C" + strconv.Itoa(i+1) }

// config is the run's configuration file: one tenant, o.Connectors database connector instances
// over the demo salon's schema, and limits out of the way of one client sending everything.
func (st *stack) config() string {
	var b strings.Builder
	b.WriteString(`tenants:
  - id: ` + tenant + `
    name: Bench Salon
    regime: gdpr
    country: DE
    time_zone: Europe/Berlin
    contact_email: privacy@bench.example
    assertion_key: {env: BENCH_ASSERTION_KEY}
    tokens:
      - {role: admin, env: BENCH_ADMIN_TOKEN}
    policy: {manual_approval: []}
mail: {domain: mg.bench.example, from: privacy@mg.bench.example}
limits:
  submit: {tenant: 1000000/1m, subject: "off", client: "off"}
  verify: {tenant: 1000000/1m, subject: "off", client: "off"}
connectors:`)
	for i := range st.o.Connectors {
		yml := strings.Replace(string(demo.ConnectorConfig), "dsn_env: LETHE_DEMO_DATABASE_URL", "dsn_env: "+dsnEnv(i), 1)
		b.WriteString("\n  - name: c" + strconv.Itoa(i+1) + "\n    type: database\n    tenants: [" + tenant + "]\n    config:" +
			strings.ReplaceAll("\n"+yml, "\n", "\n      "))
	}
	return b.String() + "\n"
}

// createDB creates a database for the run and returns its URL.
func (st *stack) createDB(ctx context.Context, suffix string) (string, error) {
	name := "bench_" + st.suffix + suffix
	conn, err := pgx.Connect(ctx, st.o.DatabaseURL)
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL at --postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	st.dbs = append(st.dbs, name)
	u, err := url.Parse(st.o.DatabaseURL)
	if err != nil {
		return "", fmt.Errorf("--postgres: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func (st *stack) dropDBs() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, st.o.DatabaseURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, name := range st.dbs {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}

// emails are the generated customers' addresses, past the demo's four well-known ones.
func emails(ctx context.Context, db *pgxpool.Pool) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT email FROM customers WHERE id > 4 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing the customers: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// prepare applies migrations and creates topics from this process, with the processes'
// own configuration, and keeps the connections for driving the run.
func (st *stack) prepare(ctx context.Context) error {
	for _, kv := range st.env {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if st.lethe, err = app.New(ctx, cfg, quiet, app.Need{Store: true, Bus: true, Temporal: true}); err != nil {
		return err
	}
	st.closers = append(st.closers, st.lethe.Close)
	return st.lethe.Prepare(ctx, func(string, ...any) {})
}

// startProcs starts serve, the workers, the bridges and each connector's runners as separate
// processes, and waits for serve to be ready.
func (st *stack) startProcs(ctx context.Context) error {
	step(st.o, "starting serve, %d worker(s), %d bridge(s) and %d runner(s) for each of %d connectors", st.o.Workers, st.o.Bridges, st.o.Runners, st.o.Connectors)
	if err := st.start("serve", false, "serve"); err != nil {
		return err
	}
	for i := range st.o.Workers {
		if err := st.start(name("worker", i), i == 0, "worker"); err != nil {
			return err
		}
	}
	for i := range st.o.Bridges {
		if err := st.start(name("bridge", i), i == 0, "bridge"); err != nil {
			return err
		}
	}
	for c := range st.o.Connectors {
		for i := range st.o.Runners {
			if err := st.start(name("runner c"+strconv.Itoa(c+1), i), c == 0 && i == 0, "connector", "c"+strconv.Itoa(c+1)); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := http.Get(st.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lethe serve was not ready within a minute; its output:\n%s", st.procs[0].out.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func name(what string, i int) string {
	if i == 0 {
		return what
	}
	return what + " #" + strconv.Itoa(i+1)
}

// start runs one lethe process; profiled ones serve pprof on a free port.
func (st *stack) start(name string, profiled bool, args ...string) error {
	p := &proc{name: name, out: &bytes.Buffer{}}
	args = append(args, "--log-format", "text")
	if profiled && st.o.Profile != "" {
		port, err := localstack.FreePort()
		if err != nil {
			return err
		}
		p.pprof = "127.0.0.1:" + strconv.Itoa(port)
		args = append(args, "--pprof", p.pprof)
	}
	p.cmd = exec.Command(st.o.Binary, args...)
	p.cmd.Env = append(os.Environ(), st.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting lethe %s: %w", strings.Join(args, " "), err)
	}
	p.done = make(chan struct{})
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	st.procs = append(st.procs, p)
	return nil
}

// stop ends a process and waits for it.
func (p *proc) stop() {
	p.stopped = true
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// exited reports a process that stopped on its own, with its output.
func (st *stack) exited() error {
	for _, p := range st.procs {
		select {
		case <-p.done:
			if !p.stopped {
				return fmt.Errorf("lethe %s exited (%v); its output:\n%s", p.name, p.err, p.out.String())
			}
		default:
		}
	}
	return nil
}

func (st *stack) close() {
	for _, p := range st.procs {
		p.stop()
	}
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
	st.dropDBs()
}

// wantEffects is how many customers' rows the Lethe phase changes: one per erasure and one
// per rectification.
func (st *stack) wantEffects() int {
	n := 0
	for i := range st.o.Requests {
		if kindOf(i) != "access" {
			n++
		}
	}
	return n
}
