package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/localstack"
)

func newStackCmd() *cobra.Command {
	var o localstack.TestStackOptions
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
			return localstack.RunTestStack(ctx, cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", filepath.Join(".lethe", "test"), "directory for the services' data and logs")
	f.StringVar(&o.EnvFile, "env-file", "", "file to write the test variables to (default DIR/env)")
	f.StringVar(&o.Kafka, "kafka", "real", `which broker: "real" (Apache Kafka, needs Java) or "inprocess"`)
	jars := os.Getenv("LETHE_KAFKA_JARS")
	if jars == "" {
		jars = filepath.Join(".lethe", "cache", "kafka-3.9.1")
	}
	f.StringVar(&o.KafkaJars, "kafka-jars", jars, "directory of the Kafka broker jars (env LETHE_KAFKA_JARS)")
	f.IntVar(&o.PostgresPort, "postgres-port", 0, "PostgreSQL port on 127.0.0.1 (0: any free port)")
	f.IntVar(&o.KafkaPort, "kafka-port", 0, "Kafka port on 127.0.0.1 (0: any free port)")
	return cmd
}
