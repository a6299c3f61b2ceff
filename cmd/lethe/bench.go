package main

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/bench"
)

const benchHelp = `Drive requests through the whole of Lethe and compare with what the Temporal server itself
can do, in the same run:

  floor   a bare workflow of four no-op activities per request, started directly on the
          same Temporal server with the same number in flight; floor and Lethe alternate in
          --rounds rounds, each over a share of --requests
  lethe   access, erasure and rectification requests in turn, half submitted over the API
          with a host app's identity assertion, half over Kafka (lethe.requests.intake) and
          verified with the code mailed to the subject; approval is automatic; each fans out
          to --connectors database connector instances over Kafka and completes through the
          bridge, writing the read model, the audit trail and mail
  intake  the API alone at a fixed offered load (--intake-rate for --intake-for), with the
          worker, bridges and runners stopped: accepted per second, latency, nothing refused

The run starts its own Temporal dev server (--temporal-bin) and, as separate processes of
this binary, lethe serve, --workers workers, --bridges bridges and --runners runners for each
connector instance. PostgreSQL (--postgres, an admin URL: the run creates its databases and
drops them after) and Kafka (--kafka: the run's topics get a prefix of their own) are given;
"lethe stack" starts both and writes their addresses to .lethe/test/env.

It prints completed requests per second and p50/p95/p99 from intake to completion for both,
the ratio Lethe / floor, the CPU seconds of each process (from /proc/PID/stat), PostgreSQL
transactions per request (pg_stat_database), mails per request, and the customer rows changed,
which must be one per erasure or rectification in every connector's database. It exits non-zero
if any request failed, any change was applied twice or not at all, or the API refused intake.

--profile DIR writes CPU and allocation profiles (pprof) of the worker, the first bridge and the
first runner of connector c1, taken over --profile-for of the timed Lethe phase.`

func newBenchCmd() *cobra.Command {
	var o bench.Options
	var brokers string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Lethe end to end against Temporal's own floor, on real Temporal, Kafka and PostgreSQL",
		Long:  benchHelp,
		Example: `  ./bin/lethe stack &    # PostgreSQL and Kafka; wait for .lethe/test/env
  . .lethe/test/env && ./bin/lethe bench
  ./bin/lethe bench --requests 300 --workers 2 --bridges 2 --runners 2 --profile /tmp/prof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			if brokers != "" {
				o.Brokers = strings.Split(brokers, ",")
			}
			o.Out, o.Progress = cmd.OutOrStdout(), cmd.ErrOrStderr()
			rep, err := bench.Run(ctx, o)
			if err != nil {
				return err
			}
			rep.Print(cmd.OutOrStdout())
			return rep.Check()
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Requests, "requests", 2000, "requests through Lethe, and workflows through the floor")
	f.IntVar(&o.Concurrency, "concurrency", 16, "requests in flight at once, in both")
	f.IntVar(&o.Rounds, "rounds", 4, "rounds alternating the floor and Lethe, so both meet the machine's other load alike")
	f.IntVar(&o.Workers, "workers", 1, "lethe worker processes")
	f.IntVar(&o.Bridges, "bridges", 1, "lethe bridge processes")
	f.IntVar(&o.Runners, "runners", 1, "lethe connector processes per connector instance")
	f.IntVar(&o.Connectors, "connectors", 4, "database connector instances each request fans out to")
	f.IntVar(&o.Partitions, "partitions", 0, "partitions per Kafka topic (default: 4, or the most processes of one kind)")
	f.IntVar(&o.IntakeRate, "intake-rate", 40, "API submissions a second offered in the intake measurement (0 skips it)")
	f.DurationVar(&o.IntakeFor, "intake-for", 10*time.Second, "how long the intake measurement offers its load")
	f.StringVar(&o.DatabaseURL, "postgres", os.Getenv("LETHE_TEST_DATABASE_URL"), "admin URL of a PostgreSQL server (env LETHE_TEST_DATABASE_URL)")
	f.StringVar(&brokers, "kafka", os.Getenv("LETHE_TEST_KAFKA_BROKERS"), "Kafka bootstrap addresses, comma-separated (env LETHE_TEST_KAFKA_BROKERS)")
	f.StringVar(&o.TemporalBin, "temporal-bin", filepath.Join("bin", "temporal"), "path of the Temporal CLI")
	f.StringVar(&o.Profile, "profile", "", "directory for pprof CPU and allocation profiles (off when empty)")
	f.DurationVar(&o.ProfileFor, "profile-for", 20*time.Second, "length of the CPU profiles")
	return cmd
}
