package workflows_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/lethe-privacy/lethe/workflows"
)

// Histories recorded from real runs (internal/e2e and internal/breaches with
// LETHE_RECORD_HISTORY_DIR) must replay against today's code: a change to a workflow that would
// break running requests or open breaches fails here, and must go through workflow.GetVersion
// instead.
func TestRecordedHistoriesReplay(t *testing.T) {
	replay(t, "request_*.json", 3, workflows.RequestWorkflow) // the access, erasure and blocked erasure ones at least
}

func TestRecordedBreachHistoriesReplay(t *testing.T) {
	replay(t, "breach_*.json", 1, workflows.BreachWorkflow)
}

// One recorded before texts (version notice-window only), one with people texted across a
// killed worker (notice-texts).
func TestRecordedNoticeHistoriesReplay(t *testing.T) {
	replay(t, "notice_*.json", 2, workflows.BreachNoticeWorkflow)
}

func replay(t *testing.T, pattern string, least int, workflow any) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < least {
		t.Fatalf("found %d recorded histories %s, want %d or more", len(files), pattern, least)
	}
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflow)
			if err := r.ReplayWorkflowHistoryFromJSONFile(logger, f); err != nil {
				t.Fatalf("replaying %s: %v", f, err)
			}
		})
	}
}
