package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/localstack"
)

// The variables internal/testenv reads (importing it would link the testing package into lethe).
const (
	envTestDatabaseURL  = "LETHE_TEST_DATABASE_URL"
	envTestKafkaBrokers = "LETHE_TEST_KAFKA_BROKERS"
)

type stackOptions struct {
	dir          string
	envFile      string
	kafka        string
	kafkaJars    string
	postgresPort int
	kafkaPort    int
}

func newStackCmd() *cobra.Command {
	var o stackOptions
	cmd := &cobra.Command{
		Use:   "stack",
		Short: "Run PostgreSQL and Apache Kafka for Lethe's own test suite (deploy/test.sh runs it)",
		Long: `Start the backing services that Lethe's integration tests use, as child processes:
  PostgreSQL   a local cluster from the installed server binaries, data under --dir
  Kafka        a real Apache Kafka broker (KRaft mode) from the jars in --kafka-jars,
               run with the java on PATH; or, with --kafka inprocess, the in-process
               broker (for machines without Java: it is not the real thing)
When both accept connections, write --env-file with the variables the tests read:
  export LETHE_TEST_DATABASE_URL=...   admin URL of the server (tests create their databases)
  export LETHE_TEST_KAFKA_BROKERS=...  bootstrap address of the broker
then run until interrupted (Ctrl-C or SIGTERM), stop both cleanly and remove the env file.
Progress goes to stderr; the services' own output goes to postgres.log and kafka.log in --dir.

deploy/test.sh does all of this for you (it also fetches the Kafka jars and builds the
Temporal CLI); run this command yourself to keep the services up between test runs:

  lethe stack &                      # wait for .lethe/test/env to appear
  . .lethe/test/env && go test ./internal/bus/...

The PostgreSQL cluster is kept under --dir between runs; the Kafka broker's data too.
Nothing listens beyond 127.0.0.1, and PostgreSQL trusts every local connection: this is a
test stack, never a deployment.`,
		Example: "  lethe stack --dir /tmp/lethe-test --env-file /tmp/lethe-test.env\n  lethe stack --kafka inprocess",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			return runStack(ctx, cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", filepath.Join(".lethe", "test"), "directory for the services' data and logs")
	f.StringVar(&o.envFile, "env-file", "", "file to write the test variables to (default DIR/env)")
	f.StringVar(&o.kafka, "kafka", "real", `which broker: "real" (Apache Kafka, needs Java) or "inprocess"`)
	jars := os.Getenv("LETHE_KAFKA_JARS")
	if jars == "" {
		jars = filepath.Join(".lethe", "cache", "kafka-3.9.1")
	}
	f.StringVar(&o.kafkaJars, "kafka-jars", jars, "directory of the Kafka broker jars (env LETHE_KAFKA_JARS)")
	f.IntVar(&o.postgresPort, "postgres-port", 0, "PostgreSQL port on 127.0.0.1 (0: any free port)")
	f.IntVar(&o.kafkaPort, "kafka-port", 0, "Kafka port on 127.0.0.1 (0: any free port)")
	return cmd
}

func runStack(ctx context.Context, progress io.Writer, o stackOptions) (err error) {
	step := func(format string, args ...any) { fmt.Fprintf(progress, "==> "+format+"\n", args...) }
	if o.kafka != "real" && o.kafka != "inprocess" {
		return fmt.Errorf(`--kafka must be "real" or "inprocess", not %q`, o.kafka)
	}
	if o.envFile == "" {
		o.envFile = filepath.Join(o.dir, "env")
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.dir, err)
	}
	// A file left by a killed run must not make anyone think this one is ready.
	if err := os.Remove(o.envFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the old env file: %w", err)
	}

	pgLog, err := createLog(o.dir, "postgres.log")
	if err != nil {
		return err
	}
	defer pgLog.Close()
	step("starting PostgreSQL (data in %s, log in %s)", filepath.Join(o.dir, "postgres"), pgLog.Name())
	pg, err := localstack.StartPostgres(ctx, localstack.PostgresOptions{DataDir: filepath.Join(o.dir, "postgres"), Port: o.postgresPort, Log: pgLog})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pg.Stop()) }()

	var brokers []string
	var kafkaDone <-chan struct{}
	if o.kafka == "real" {
		kLog, err := createLog(o.dir, "kafka.log")
		if err != nil {
			return err
		}
		defer kLog.Close()
		step("starting Apache Kafka (data in %s, log in %s)", filepath.Join(o.dir, "kafka"), kLog.Name())
		k, err := localstack.StartKafka(ctx, localstack.KafkaOptions{JarsDir: o.kafkaJars, DataDir: filepath.Join(o.dir, "kafka"), Port: o.kafkaPort, Log: kLog})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, k.Stop()) }()
		brokers, kafkaDone = k.Brokers(), k.Done()
	} else {
		step("starting the in-process Kafka broker")
		k, err := localstack.StartKfake(localstack.KfakeOptions{Port: o.kafkaPort})
		if err != nil {
			return err
		}
		defer k.Stop()
		brokers = k.Brokers()
	}

	env := fmt.Sprintf("# Written by lethe stack (pid %d); removed when it stops.\nexport %s=%s\nexport %s=%s\n",
		os.Getpid(), envTestDatabaseURL, shellQuote(pg.URL("postgres")), envTestKafkaBrokers, shellQuote(strings.Join(brokers, ",")))
	if err := writeFileAtomic(o.envFile, []byte(env)); err != nil {
		return err
	}
	defer os.Remove(o.envFile)
	step("test stack ready: PostgreSQL %s, Kafka %s; variables in %s", pg.URL("postgres"), strings.Join(brokers, ","), o.envFile)

	select {
	case <-ctx.Done():
		step("stopping the test stack")
		return nil
	case <-pg.Done():
		return fmt.Errorf("PostgreSQL stopped unexpectedly: see %s", pgLog.Name())
	case <-kafkaDone:
		return fmt.Errorf("Kafka stopped unexpectedly: see %s", filepath.Join(o.dir, "kafka.log"))
	}
}

// createLog truncates the service's log at each start so it only tells about this run.
func createLog(dir, name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	return f, nil
}

// writeFileAtomic makes the file appear complete or not at all, so a script polling for it
// never sources half of it.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
