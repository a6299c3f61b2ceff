package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/bus"
)

const configHelp = `
Configuration: the YAML file named by LETHE_CONFIG, overridden by LETHE_HTTP_ADDR,
LETHE_TEMPORAL_HOSTPORT, LETHE_TEMPORAL_NAMESPACE, LETHE_KAFKA_BROKERS, DATABASE_URL and the
other variables listed in the README. A bad setting stops the start with one line naming it.`

func newServeCmd() *cobra.Command {
	var logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API, MyAccount and dashboard against external Temporal, Kafka and PostgreSQL",
		Long:  "Serve the HTTP surface (/v1 API, /myaccount, /dashboard, /healthz, /readyz, /metrics)." + configHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(logFormat)
			l, err := app.Listen(cfg.HTTP.Addr)
			if err != nil {
				return err
			}
			d, err := app.Connect(ctx, cfg, log, app.All)
			if err != nil {
				return err
			}
			defer d.Close()
			log.Info("serving", "addr", l.Addr().String())
			return app.Serve(ctx, l, api.New(log, d.Checkers()...))
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return cmd
}

func newWorkerCmd() *cobra.Command {
	var logFormat string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker that executes Lethe's workflows and activities",
		Long:  "Poll the configured Temporal task queue and run request, breach and retention workflows." + configHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(logFormat)
			d, err := app.Connect(ctx, cfg, log, app.All)
			if err != nil {
				return err
			}
			defer d.Close()
			log.Info("worker polling", "task_queue", cfg.Temporal.TaskQueue)
			return d.RunWorker(ctx)
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return cmd
}

func newMigrateCmd() *cobra.Command {
	var topics bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations (and create Kafka topics with --topics)",
		Long: `Apply Lethe's numbered schema migrations to DATABASE_URL under an advisory lock, so it is
safe to run from several replicas at once; running it again applies nothing. With --topics it
also creates the Kafka topics (existing ones are left as they are).` + configHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			d, err := app.Connect(ctx, cfg, newLogger("text"), app.Need{Store: true, Bus: topics})
			if err != nil {
				return err
			}
			defer d.Close()
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
				all := append(bus.CoreTopics(), commandTopics(cfg.ConnectorNames())...)
				if err := d.Bus.EnsureTopics(ctx, all...); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "kafka topics ready: %d\n", len(all))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&topics, "topics", false, "also create the Kafka topics")
	return cmd
}

func commandTopics(connectors []string) []string {
	var out []string
	for _, c := range connectors {
		out = append(out, bus.CommandTopic(c))
	}
	return out
}

func newConnectorCmd() *cobra.Command {
	var logFormat string
	cmd := &cobra.Command{
		Use:   "connector NAME",
		Short: "Serve one connector over Kafka (its commands topic in, results out)",
		Long: `Consume lethe.connector.NAME.commands, perform each command with the connector configured
under connectors.NAME in the configuration file, and publish the result to
lethe.connector.results. A command is committed only after its result is published, and a
command seen again after a crash is answered from the stored result, never performed twice.
Run several replicas for throughput: they share the commands through one consumer group.` + configHelp,
		Example: "  LETHE_CONFIG=lethe.yaml lethe connector database",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signalContext()
			defer stop()
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(logFormat)
			d, err := app.Connect(ctx, cfg, log, app.Need{Store: true, Bus: true})
			if err != nil {
				return err
			}
			defer d.Close()
			log.Info("serving connector", "connector", args[0])
			return d.RunConnector(ctx, args[0])
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return cmd
}

func newBridgeCmd() *cobra.Command {
	var logFormat string
	cmd := &cobra.Command{
		Use:   "bridge",
		Short: "Complete fan-out activities from connector results",
		Long: `Consume lethe.connector.results and complete (or fail, or heartbeat) the Temporal activity
each result names by its task token. Results that are malformed go to lethe.dlq with the
reason; results for activities that no longer wait are acknowledged and dropped.` + configHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(logFormat)
			d, err := app.Connect(ctx, cfg, log, app.All)
			if err != nil {
				return err
			}
			defer d.Close()
			log.Info("bridge consuming results")
			return d.RunBridge(ctx)
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return cmd
}
