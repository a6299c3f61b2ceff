package e2e_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/runner"
)

// rateLimited stands in for the database connector and answers every restriction with a
// provider's "retry after 90 s".
type rateLimited struct {
	mu     sync.Mutex
	called time.Time
}

func (c *rateLimited) Name() string                { return "database" }
func (c *rateLimited) Check(context.Context) error { return nil }
func (c *rateLimited) Close() error                { return nil }
func (c *rateLimited) Restrict(context.Context, connectors.Task) (connectors.RestrictResult, error) {
	c.mu.Lock()
	c.called = time.Now()
	c.mu.Unlock()
	return connectors.RestrictResult{}, connectors.RetryAfter(errors.New("rate limited"), 90*time.Second)
}

func (c *rateLimited) lastCall() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.called
}

// A connector's retry hint travels through the runner, the result and the bridge to
// Temporal: the activity's next attempt is scheduled 90 s after the failure, not after the
// workflow's 10 s backoff.
func TestRetryAfterSchedulesTheNextAttempt(t *testing.T) {
	s := newStack(t)
	s.Run("worker", s.Deps.RunWorker)
	s.Run("bridge", s.Deps.RunBridge)
	ring, err := s.Deps.Keys.Ring("database")
	require.NoError(t, err)
	c := &rateLimited{}
	r := &runner.Runner{Connector: c, Keys: ring, Bus: s.Deps.Bus, Store: s.Deps.Store, Exports: s.Deps.Exports, Log: s.Log}
	s.Run("connector", r.Run)

	id := s.Submit(domain.TypeRestriction, connectors.Subject{Email: demo.ClearCustomerEmail})
	ctx := context.Background()
	t.Cleanup(func() { _ = s.Deps.Temporal.TerminateWorkflow(ctx, id, "", "test over") })
	var next, failed time.Time
	require.Eventually(t, func() bool {
		d, err := s.Deps.Temporal.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		for _, a := range d.PendingActivities {
			if a.Attempt >= 2 && a.LastFailure != nil && a.NextAttemptScheduleTime != nil {
				assert.Contains(t, a.LastFailure.Message, "rate limited")
				next, failed = a.NextAttemptScheduleTime.AsTime(), c.lastCall()
				return true
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "the restriction's first attempt never failed")
	delay := next.Sub(failed)
	assert.True(t, delay > 85*time.Second && delay < 95*time.Second, "next attempt %s after the failure, want about 90s", delay)
}
