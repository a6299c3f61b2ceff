package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The variables internal/testenv reads (importing it would link the testing package into lethe).
const (
	envTestDatabaseURL  = "LETHE_TEST_DATABASE_URL"
	envTestKafkaBrokers = "LETHE_TEST_KAFKA_BROKERS"
)

// TestStackOptions place the test stack (see lethe stack --help).
type TestStackOptions struct {
	Dir     string
	EnvFile string // default Dir/env
	// Kafka is "real" (Apache Kafka from KafkaJars, needs Java) or "inprocess".
	Kafka     string
	KafkaJars string
	// Ports on 127.0.0.1; 0 picks a free one.
	PostgresPort, KafkaPort int
}

// RunTestStack starts PostgreSQL and Kafka for Lethe's own test suite, writes the variables
// the tests read to o.EnvFile once both accept connections, and runs until ctx ends (`lethe
// stack`).
func RunTestStack(ctx context.Context, progress io.Writer, o TestStackOptions) (err error) {
	step := func(format string, args ...any) { fmt.Fprintf(progress, "==> "+format+"\n", args...) }
	if o.Kafka != "real" && o.Kafka != "inprocess" {
		return fmt.Errorf(`--kafka must be "real" or "inprocess", not %q`, o.Kafka)
	}
	if o.EnvFile == "" {
		o.EnvFile = filepath.Join(o.Dir, "env")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.Dir, err)
	}
	// A file left by a killed run must not make anyone think this one is ready.
	if err := os.Remove(o.EnvFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the old env file: %w", err)
	}

	pgLog, err := createLog(o.Dir, "postgres.log")
	if err != nil {
		return err
	}
	defer pgLog.Close()
	step("starting PostgreSQL (data in %s, log in %s)", filepath.Join(o.Dir, "postgres"), pgLog.Name())
	pg, err := StartPostgres(ctx, PostgresOptions{DataDir: filepath.Join(o.Dir, "postgres"), Port: o.PostgresPort, Log: pgLog})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pg.Stop()) }()

	var brokers []string
	var kafkaDone <-chan struct{}
	if o.Kafka == "real" {
		kLog, err := createLog(o.Dir, "kafka.log")
		if err != nil {
			return err
		}
		defer kLog.Close()
		step("starting Apache Kafka (data in %s, log in %s)", filepath.Join(o.Dir, "kafka"), kLog.Name())
		k, err := StartKafka(ctx, KafkaOptions{JarsDir: o.KafkaJars, DataDir: filepath.Join(o.Dir, "kafka"), Port: o.KafkaPort, Log: kLog})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, k.Stop()) }()
		brokers, kafkaDone = k.Brokers(), k.Done()
	} else {
		step("starting the in-process Kafka broker")
		k, err := StartKfake(KfakeOptions{Port: o.KafkaPort})
		if err != nil {
			return err
		}
		defer k.Stop()
		brokers = k.Brokers()
	}

	env := fmt.Sprintf("# Written by lethe stack (pid %d); removed when it stops.\nexport %s=%s\nexport %s=%s\n",
		os.Getpid(), envTestDatabaseURL, shellQuote(pg.URL("postgres")), envTestKafkaBrokers, shellQuote(strings.Join(brokers, ",")))
	if err := writeFileAtomic(o.EnvFile, []byte(env)); err != nil {
		return err
	}
	defer os.Remove(o.EnvFile)
	step("test stack ready: PostgreSQL %s, Kafka %s; variables in %s", pg.URL("postgres"), strings.Join(brokers, ","), o.EnvFile)

	select {
	case <-ctx.Done():
		step("stopping the test stack")
		return nil
	case <-pg.Done():
		return fmt.Errorf("PostgreSQL stopped unexpectedly: see %s", pgLog.Name())
	case <-kafkaDone:
		return fmt.Errorf("Kafka stopped unexpectedly: see %s", filepath.Join(o.Dir, "kafka.log"))
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
