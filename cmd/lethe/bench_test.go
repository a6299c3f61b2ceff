package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/internal/testenv"
)

// A small lethe bench runs the whole path in CI, so the command cannot rot: every request
// completes, every change is applied once, the table and the ratio are printed, and the
// profiles of the worker, the bridge and a runner are written.
func TestBenchCompletesEveryRequestAndPrintsTheTable(t *testing.T) {
	profiles := t.TempDir()
	stdout, stderr, code := runLethe(t, map[string]string{
		"LETHE_TEST_DATABASE_URL":  os.Getenv(testenv.EnvDatabaseURL),
		"LETHE_TEST_KAFKA_BROKERS": strings.Join(testenv.KafkaBrokers(t), ","),
	}, "bench", "--requests", "40", "--concurrency", "8", "--intake-rate", "10", "--intake-for", "2s",
		"--temporal-bin", testenv.TemporalBinary(t), "--profile", profiles, "--profile-for", "2s")
	if code != 0 {
		t.Fatalf("lethe bench exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, row := range []string{
		`floor \(4 no-op activities\)\s+40\s+0\s`,
		`lethe \(intake to completion\)\s+40\s+0\s`,
		`ratio lethe / floor\s+\d+\.\d\d`,
		`worker\s+\d+\.\d\s+\d+\.\d`,
		`temporal server\s+\d+\.\d`,
		`PostgreSQL transactions, Lethe's database\s+\d+\.\d`,
		`customer rows changed \(want 104, at most once each\)\s+104, at most 1 per row`,
		`refused or failed\s+0\n`,
	} {
		if !regexp.MustCompile(row).MatchString(stdout) {
			t.Errorf("the table has no line matching %q:\n%s", row, stdout)
		}
	}
	for _, f := range []string{"worker.cpu.pprof", "worker.allocs.pprof", "bridge.cpu.pprof", "runner.cpu.pprof", "runner.allocs.pprof"} {
		if st, err := os.Stat(filepath.Join(profiles, f)); err != nil || st.Size() == 0 {
			t.Errorf("no profile %s: %v", f, err)
		}
	}
}
