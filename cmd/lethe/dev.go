package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailgun/mailgun-go/v4"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/localstack"
	"github.com/lethe-privacy/lethe/workflows"
)

type devOptions struct {
	dir          string
	temporalBin  string
	httpAddr     string
	pgPort       int
	temporalPort int
	uiPort       int
	kafkaPort    int
	verbose      bool
}

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack on this machine and print its URLs",
		Long: `Start everything Lethe needs on this machine, as child processes of this command:
  PostgreSQL   a local cluster from the installed binaries, data under --dir
  Temporal     the pinned Temporal CLI dev server (./bin/temporal) with its Web UI
  Kafka        an in-process broker, unless LETHE_KAFKA_BROKERS names a real cluster
then apply migrations, create the topics, load the demo salon's database, start the worker and
the HTTP server, and print the URLs and the demo tenant's admin token. Ctrl-C stops it all.

State (databases, Temporal history, generated secrets) persists under --dir between runs;
delete that directory to start afresh.`,
		Example: "  ./deploy/dev.sh          # builds ./bin/temporal if needed, then runs lethe dev\n  lethe dev --http 127.0.0.1:9090",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", ".lethe", "directory for local state")
	f.StringVar(&o.temporalBin, "temporal-bin", filepath.Join("bin", "temporal"), "path of the Temporal CLI")
	f.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "address of the API, MyAccount and the dev mailbox")
	f.IntVar(&o.pgPort, "postgres-port", 54329, "port of the local PostgreSQL")
	f.IntVar(&o.temporalPort, "temporal-port", 7233, "port of the Temporal frontend")
	f.IntVar(&o.uiPort, "temporal-ui-port", 8233, "port of the Temporal Web UI")
	f.IntVar(&o.kafkaPort, "kafka-port", 9092, "port of the in-process Kafka broker")
	f.BoolVar(&o.verbose, "verbose", false, "show the services' own logs")
	return cmd
}

// devSecrets are generated on the first run and kept under --dir, so the printed token stays
// valid across restarts.
type devSecrets struct {
	AdminToken string `json:"admin_token"`
	SigningKey string `json:"signing_key"`
}

func runDev(ctx context.Context, out io.Writer, o devOptions) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.dir, err)
	}
	if _, err := os.Stat(o.temporalBin); err != nil {
		return fmt.Errorf("Temporal CLI not found at %s: run ./deploy/dev.sh, which builds it, or pass --temporal-bin", o.temporalBin)
	}
	var svcLog io.Writer = io.Discard
	if o.verbose {
		svcLog = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.verbose {
		log = newLogger("text")
	}
	secrets, err := loadDevSecrets(filepath.Join(o.dir, "dev-secrets.json"))
	if err != nil {
		return err
	}

	step("starting PostgreSQL (data in %s)", filepath.Join(o.dir, "postgres"))
	pg, err := localstack.StartPostgres(ctx, localstack.PostgresOptions{DataDir: filepath.Join(o.dir, "postgres"), Port: o.pgPort, Log: svcLog})
	if err != nil {
		return err
	}
	defer pg.Stop()
	for _, db := range []string{"lethe", "lethe_demo"} {
		if err := pg.EnsureDatabase(ctx, db); err != nil {
			return err
		}
	}

	step("starting the Temporal dev server")
	tmp, err := localstack.StartTemporal(ctx, localstack.TemporalOptions{
		Binary: o.temporalBin, DBFile: filepath.Join(o.dir, "temporal.db"),
		Port: o.temporalPort, UIPort: o.uiPort, Namespace: "default", Log: svcLog,
	})
	if err != nil {
		return err
	}
	defer tmp.Stop()

	brokers := os.Getenv("LETHE_KAFKA_BROKERS")
	kafkaDesc := "external cluster " + brokers
	if brokers == "" {
		step("starting the in-process Kafka broker")
		kf, err := localstack.StartKfake(localstack.KfakeOptions{Port: o.kafkaPort})
		if err != nil {
			return err
		}
		defer kf.Stop()
		brokers = kf.Brokers()[0]
		kafkaDesc = "in-process broker " + brokers
	}

	// Mail goes to Mailgun's own stand-in, in this process.
	mailbox := mailgun.NewMockServer()
	defer mailbox.Stop()

	env := map[string]string{
		"LETHE_MAIL_API_BASE":     mailbox.URL(),
		"LETHE_MAILGUN_API_KEY":   "dev",
		"LETHE_MAIL_DOMAIN":       "mg.lethe.localhost",
		"LETHE_MAIL_FROM":         "privacy@mg.lethe.localhost",
		"LETHE_EXPORTS_DIR":       filepath.Join(o.dir, "exports"),
		"LETHE_DEMO_DATABASE_URL": pg.URL("lethe_demo"),
		"LETHE_DEMO_HASH_KEY":     secrets.SigningKey,
		"DATABASE_URL":            pg.URL("lethe"),
		"LETHE_TEMPORAL_HOSTPORT": tmp.HostPort(),
		"LETHE_KAFKA_BROKERS":     brokers,
		"LETHE_HTTP_ADDR":         o.httpAddr,
		"LETHE_PUBLIC_URL":        "http://" + o.httpAddr,
		"LETHE_SIGNING_KEY":       secrets.SigningKey,
		"LETHE_DEMO_ADMIN_TOKEN":  secrets.AdminToken,
	}
	// The demo connector reads its database URL and hash key from the process environment.
	for _, k := range []string{"LETHE_DEMO_DATABASE_URL", "LETHE_DEMO_HASH_KEY"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, env[k])
		}
	}
	cfg, err := devConfig(env)
	if err != nil {
		return err
	}
	cfgPath, err := writeDevConfig(o.dir, cfg, secrets)
	if err != nil {
		return err
	}
	l, err := app.Listen(cfg.HTTP.Addr)
	if err != nil {
		return err
	}
	need := app.All
	need.Mailbox = 500
	d, err := app.New(ctx, cfg, log, need)
	if err != nil {
		return err
	}
	defer d.Close()

	step("applying migrations")
	if _, err := d.Store.Migrate(ctx); err != nil {
		return err
	}
	step("creating Kafka topics")
	if err := d.EnsureTopics(ctx); err != nil {
		return err
	}
	step("loading the demo salon's database")
	summary, err := loadDemo(ctx, pg.URL("lethe_demo"))
	if err != nil {
		return err
	}

	h, err := d.Handler()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return app.RunParts(gctx, d.Parts()...) })
	g.Go(func() error { return app.Serve(gctx, l, h) })

	step("checking the worker with a self-check workflow")
	if err := selfCheck(gctx, d.Temporal, cfg.Temporal.TaskQueue); err != nil {
		stop()
		_ = g.Wait()
		return err
	}

	base := "http://" + l.Addr().String()
	fmt.Fprintf(out, `
Lethe is running. Ctrl-C stops everything.

  API            %[1]s/v1
  MyAccount      %[1]s/myaccount
  Readiness      %[1]s/readyz
  Temporal UI    %[2]s
  Kafka          %[3]s
  Dev mailbox    %[1]s/dev/mailbox  (mail goes to a Mailgun stand-in at %[7]s)
  PostgreSQL     %[4]s  (demo data: %[5]s)
  Demo tenant    demo (admin token: %[6]s)

Try the API:
  curl -H 'Authorization: Bearer %[6]s' -H 'Content-Type: application/json' \
       -d '{"type":"access","subject":{"email":"hana.health@example.com"}}' %[1]s/v1/requests
Watch a whole flow (access, erasure, blocked erasure), in another terminal:
  ./bin/lethe demo%[9]s

Operator commands use the same stack through its configuration file:
  export LETHE_CONFIG=%[8]s
  lethe requests submit --type access --email nora.clearwater@example.com --verified
  lethe requests list
`, base, tmp.UIURL(), kafkaDesc, redactURL(pg.URL("lethe")), summary, secrets.AdminToken, mailbox.URL(), cfgPath, demoDirFlag(o.dir))

	err = g.Wait()
	fmt.Fprintln(out, "==> stopping")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// devConfig is the configuration of the local stack: the user's LETHE_CONFIG (if any), the
// local services' addresses, and the demo tenant unless the file defines one.
func devConfig(env map[string]string) (config.Config, error) {
	cfg := config.Defaults()
	if path := os.Getenv(config.EnvFile); path != "" {
		if err := config.ReadFile(path, &cfg); err != nil {
			return config.Config{}, err
		}
	}
	if _, ok := cfg.Tenant("demo"); !ok {
		cfg.Tenants = append(cfg.Tenants, config.Tenant{
			ID: "demo", Name: "Demo Salon", Regime: "gdpr", Country: "DE", TimeZone: "Europe/Berlin",
			ContactEmail: "privacy@demo-salon.example",
			// Deadline reminders and escalations land in the dev mailbox under these addresses.
			DPOEmail: "dpo@demo-salon.example", StaffEmail: "front-desk@demo-salon.example",
			Tokens: []config.Token{{Role: "admin", Secret: config.Secret{Env: "LETHE_DEMO_ADMIN_TOKEN"}}},
		})
	}
	// The demo salon's database is served by an instance of the database connector, named
	// database, for the demo tenant, unless the file configures an instance of that name.
	if _, ok := cfg.Connector("database"); !ok {
		var n yaml.Node
		if err := yaml.Unmarshal(demo.ConnectorConfig, &n); err != nil {
			return config.Config{}, fmt.Errorf("reading the demo connector configuration: %w", err)
		}
		cfg.Connectors = append(cfg.Connectors, config.Connector{Name: "database", Type: "database", Tenants: []string{"demo"}, Config: *n.Content[0]})
	}
	// A remote connector's program needs its key: in development it is derived from the dev
	// signing key, and writeDevConfig leaves it in a file for that program.
	for _, in := range cfg.Connectors {
		if !in.Remote() || len(cfg.Secrets.ConnectorKeys[in.Name]) > 0 {
			continue
		}
		secret, err := crypto.DeriveConnectorSecret(env["LETHE_SIGNING_KEY"], in.Name)
		if err != nil {
			return config.Config{}, err
		}
		name := "LETHE_DEV_CONNECTOR_KEY_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(in.Name))
		env[name] = base64.StdEncoding.EncodeToString(secret)
		if cfg.Secrets.ConnectorKeys == nil {
			cfg.Secrets.ConnectorKeys = map[string][]config.ConnectorKey{}
		}
		cfg.Secrets.ConnectorKeys[in.Name] = []config.ConnectorKey{{ID: crypto.DerivedKeyID, Secret: config.Secret{Env: name}}}
	}
	// The local services win over the caller's environment, except an external Kafka.
	err := config.Resolve(&cfg, func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	return cfg, err
}

// demoDirFlag is the --dir that `lethe demo` needs to find this stack.
func demoDirFlag(dir string) string {
	if dir == ".lethe" {
		return ""
	}
	return " --dir " + dir
}

// writeDevConfig writes the running stack's configuration, with secrets as files beside it,
// so `lethe requests` and other operator commands reach the same stack.
func writeDevConfig(dir string, cfg config.Config, s devSecrets) (string, error) {
	sdir := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return "", err
	}
	secret := func(name, value string) (config.Secret, error) {
		p, err := filepath.Abs(filepath.Join(sdir, name))
		if err != nil {
			return config.Secret{}, err
		}
		return config.Secret{File: p}, os.WriteFile(p, []byte(value), 0o600)
	}
	var err error
	if cfg.Secrets.SigningKey, err = secret("signing-key", s.SigningKey); err != nil {
		return "", err
	}
	if cfg.Mail.APIKey, err = secret("mailgun-api-key", cfg.Mail.APIKey.Value()); err != nil {
		return "", err
	}
	// The tenants and their tokens are shared with the running configuration: copy them
	// before pointing the tokens at files, or the running server would lose their values.
	cfg.Tenants = slices.Clone(cfg.Tenants)
	for i := range cfg.Tenants {
		cfg.Tenants[i].Tokens = slices.Clone(cfg.Tenants[i].Tokens)
		for j := range cfg.Tenants[i].Tokens {
			name := fmt.Sprintf("%s-%s-token", cfg.Tenants[i].ID, cfg.Tenants[i].Tokens[j].Role)
			if cfg.Tenants[i].Tokens[j].Secret, err = secret(name, cfg.Tenants[i].Tokens[j].Value()); err != nil {
				return "", err
			}
		}
	}
	// Connector keys as files too; a remote connector's program reads its key from there.
	keys := map[string][]config.ConnectorKey{}
	for name, list := range cfg.Secrets.ConnectorKeys {
		for _, k := range list {
			enc := base64.StdEncoding.EncodeToString(k.Key().Secret())
			if k.Secret, err = secret("connector-"+name+"-"+k.ID, enc); err != nil {
				return "", err
			}
			keys[name] = append(keys[name], k)
		}
	}
	cfg.Secrets.ConnectorKeys = keys
	if cfg.Exports.Dir, err = filepath.Abs(cfg.Exports.Dir); err != nil {
		return "", err
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path, _ := filepath.Abs(filepath.Join(dir, "dev.yaml"))
	header := "# Written by `lethe dev` for operator commands against the local stack; rewritten at every start.\n"
	return path, os.WriteFile(path, append([]byte(header), b...), 0o600)
}

func loadDevSecrets(path string) (devSecrets, error) {
	var s devSecrets
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("%s is damaged (%v): delete it to generate new dev secrets", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	s = devSecrets{AdminToken: "dev_" + randomHex(20), SigningKey: randomHex(32)}
	b, _ = json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return s, fmt.Errorf("writing %s: %w", path, err)
	}
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func loadDemo(ctx context.Context, url string) (string, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return "", fmt.Errorf("connecting to the demo database: %w", err)
	}
	defer pool.Close()
	s, err := demo.Load(ctx, pool, time.Now())
	if err != nil {
		return "", fmt.Errorf("loading the demo dataset: %w", err)
	}
	return fmt.Sprintf("%d customers, %d bookings (%d to come), %d invoices (%d unpaid)",
		s.Customers, s.Bookings, s.FutureBookings, s.Invoices, s.UnpaidInvoices), nil
}

func selfCheck(ctx context.Context, c client.Client, taskQueue string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "lethe-self-check-" + strconv.FormatInt(time.Now().UnixNano(), 36), TaskQueue: taskQueue,
	}, workflows.SelfCheckWorkflow, workflows.SelfCheckInput{RequestedBy: "lethe dev"})
	if err != nil {
		return fmt.Errorf("starting the self-check workflow: %w", err)
	}
	var res workflows.SelfCheckResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("self-check workflow: %w", err)
	}
	return nil
}

// redactURL hides any password before a URL is printed.
func redactURL(s string) string {
	u, err := pgxpool.ParseConfig(s)
	if err != nil {
		return "postgres://…"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", u.ConnConfig.User, u.ConnConfig.Host, u.ConnConfig.Port, u.ConnConfig.Database)
}
