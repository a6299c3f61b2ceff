package e2e_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is a whole Lethe deployment for one test (see teststack) with the e2e checks on top.
type stack struct {
	*teststack.Stack
	t testing.TB
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

// record writes the workflow's history for the replay tests in workflows/ (testenv.RecordHistory).
func (s *stack) record(id, name string) { testenv.RecordHistory(s.t, s.Deps.Temporal, id, name) }
