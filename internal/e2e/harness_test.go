package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is a whole Lethe deployment for one test (see teststack) with the e2e checks on top.
type stack struct {
	*teststack.Stack
	t *testing.T
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e"}), t: t}
}

func (s *stack) scalar(q string, args ...any) string {
	s.t.Helper()
	var v any
	require.NoError(s.t, s.Demo.QueryRow(context.Background(), q, args...).Scan(&v))
	return fmt.Sprint(v)
}

// record writes the workflow's history to $LETHE_RECORD_HISTORY_DIR/<name>.json, for the
// replay tests in workflows/ (run: LETHE_RECORD_HISTORY_DIR=$PWD/workflows/testdata ...).
func (s *stack) record(id, name string) {
	dir := os.Getenv("LETHE_RECORD_HISTORY_DIR")
	if dir == "" {
		return
	}
	s.t.Helper()
	ctx := context.Background()
	it := s.Deps.Temporal.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(s.t, err)
		h.Events = append(h.Events, e)
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(s.t, err)
	require.NoError(s.t, os.WriteFile(filepath.Join(dir, name+".json"), raw, 0o644))
}
