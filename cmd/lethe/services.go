package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/config"
)

const configHelp = `

Configuration: the YAML file named by LETHE_CONFIG, overridden by LETHE_HTTP_ADDR,
LETHE_TEMPORAL_HOSTPORT, LETHE_TEMPORAL_NAMESPACE, LETHE_KAFKA_BROKERS, DATABASE_URL and the
other variables listed in the README. A bad setting stops the start with one line naming it.
With LETHE_HEALTH_ADDR (http.health_addr) set, it also answers /healthz, /readyz and /metrics
there, for probes and scrapers.`

// serviceCmd builds a long-running part of Lethe: it loads the configuration, connects what
// the part needs (failing fast, with one line naming the setting) and runs it until Ctrl-C or
// SIGTERM.
func serviceCmd(cmd *cobra.Command, need app.Need, run func(ctx context.Context, d *app.Stack, args []string) error) *cobra.Command {
	return checkedServiceCmd(cmd, need, nil, run)
}

// checkedServiceCmd is serviceCmd with check run on the loaded configuration before anything is
// connected, for arguments the configuration must know.
func checkedServiceCmd(cmd *cobra.Command, need app.Need, check func(cfg config.Config, args []string) error,
	run func(ctx context.Context, d *app.Stack, args []string) error) *cobra.Command {
	var logFormat, pprofAddr string
	cmd.Long += configHelp
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		ctx, stop := signalContext()
		defer stop()
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(cfg, args); err != nil {
				return err
			}
		}
		if pprofAddr != "" {
			if err := app.ServeProfiles(ctx, pprofAddr); err != nil {
				return err
			}
		}
		d, err := app.New(ctx, cfg, newLogger(logFormat), need)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := d.ServeHealth(ctx); err != nil {
			return err
		}
		return run(ctx, d, args)
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve Go's pprof profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (off when empty)")
	return cmd
}

func newServeCmd() *cobra.Command {
	return serviceCmd(&cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API and MyAccount against external Temporal, Kafka and PostgreSQL",
		Long: `Serve the HTTP surface: the /v1 API, /myaccount, /webhooks/mailgun, /healthz, /readyz and
/metrics. Submission, verification and resend are rate-limited (limits:), and every serve
process shares the budgets through PostgreSQL; the README lists the HTTP timeouts.`,
		Args: cobra.NoArgs,
	}, app.All, func(ctx context.Context, d *app.Stack, _ []string) error {
		l, err := app.Listen(d.Cfg.HTTP.Addr)
		if err != nil {
			return err
		}
		h, err := d.Handler()
		if err != nil {
			return err
		}
		d.Log.Info("serving", "addr", l.Addr().String())
		return app.Serve(ctx, l, h)
	})
}

func newWorkerCmd() *cobra.Command {
	return serviceCmd(&cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker that executes Lethe's workflows and activities",
		Long: `Poll the configured Temporal task queue and run request, breach, retention and export
expiry workflows. At start and every 5 minutes it also reconciles: a request whose workflow
closed in Temporal while it still shows a live status is recorded as failed, with the reason
(see lethe requests reconcile).`,
		Args: cobra.NoArgs,
	}, app.All, func(ctx context.Context, d *app.Stack, _ []string) error {
		d.Log.Info("worker polling", "task_queue", d.Cfg.Temporal.TaskQueue)
		return d.RunWorker(ctx)
	})
}

func newMigrateCmd() *cobra.Command {
	var topics, check bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations (and create Kafka topics with --topics)",
		Long: `Apply Lethe's numbered schema migrations to DATABASE_URL under an advisory lock, so it is
safe to run from several replicas at once; running it again applies nothing. With --topics it
also creates the Kafka topics, one command topic per connector (remote ones included), and sets
the configured retention (kafka.retention) on topics that already exist. With --check it applies
nothing and exits 3 while migrations are pending (a pod's init container waits on it while the
migration job runs).` + configHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			d, err := app.New(ctx, cfg, newLogger("text"), app.Need{Store: true, Bus: topics})
			if err != nil {
				return err
			}
			defer d.Close()
			if check {
				return checkMigrations(ctx, cmd, d)
			}
			applied, err := d.Store.Migrate(ctx)
			if err != nil {
				return err
			}
			for _, name := range applied {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", name)
			}
			if len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "database schema is up to date")
			}
			if topics {
				if err := d.EnsureTopics(ctx); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "kafka topics ready: %d\n", len(app.Topics(cfg)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&topics, "topics", false, "also create the Kafka topics")
	cmd.Flags().BoolVar(&check, "check", false, "apply nothing; exit 3 while migrations are pending")
	return cmd
}

func checkMigrations(ctx context.Context, cmd *cobra.Command, d *app.Stack) error {
	pending, err := d.Store.Pending(ctx)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "database schema is up to date")
		return nil
	}
	return exitError{code: 3, err: fmt.Errorf("%d migrations pending: %s", len(pending), strings.Join(pending, ", "))}
}

func newConnectorCmd() *cobra.Command {
	return checkedServiceCmd(&cobra.Command{
		Use:   "connector NAME",
		Short: "Serve one connector instance over Kafka (its commands topic in, results out)",
		Long: `Consume lethe.connector.NAME.commands, perform each command with the connector instance
named NAME under connectors: in the configuration file (its type, with its config), and publish
the result to lethe.connector.results. A command is committed only after its result is
published, and a command seen again after a crash is answered from the stored result, never
performed twice. Run several replicas for throughput: they share the commands through one consumer group.
At start it creates every command topic that is missing, remote connectors' included.`,
		Example: "  LETHE_CONFIG=lethe.yaml lethe connector salon-db",
		Args:    cobra.ExactArgs(1),
	}, app.Need{Store: true, Bus: true, Keys: true}, func(cfg config.Config, args []string) error {
		// An instance this command cannot serve is refused before any connection is made.
		_, err := cfg.Served(args[0])
		return err
	}, func(ctx context.Context, d *app.Stack, args []string) error {
		return d.RunConnector(ctx, args[0])
	})
}

func newBridgeCmd() *cobra.Command {
	return serviceCmd(&cobra.Command{
		Use:   "bridge",
		Short: "Turn Kafka messages into Temporal calls: connector results, intake, breaches, consent changes",
		Long: `Consume lethe.connector.results and complete (or fail, or heartbeat) the Temporal activity
each result names by its task token, once the result matches the command recorded for that
token (request, tenant, connector, action, export files under the request's own prefix); a
mismatch goes to lethe.dlq and completes nothing. Results for activities that no longer wait
are acknowledged and dropped. Consume lethe.requests.intake and start each request (the same
request_id twice is one request), lethe.breaches.intake, opening each breach (the same
breach_id twice is one breach), and lethe.consent.changes, recording each change in the
consent ledger and starting an objection when marketing consent is withdrawn. Anything
malformed goes to lethe.dlq with the reason; a message is committed only once handled.`,
		Args: cobra.NoArgs,
	}, app.All, func(ctx context.Context, d *app.Stack, _ []string) error {
		d.Log.Info("bridge consuming results")
		return d.RunBridge(ctx)
	})
}
