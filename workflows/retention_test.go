package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/workflows"
)

func quietEnv() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))))
	return s.NewTestWorkflowEnvironment()
}

func purgeOutput(t *testing.T, r connectors.PurgeResult) domain.Output {
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	return domain.Output{Result: raw}
}

// A subject's expiry purges them when the date passes, to the second: not before, and at the
// new date when it is moved. A purge a connector refuses (a booking to come) is recorded and
// tried again a day later.
func TestSubjectExpiryPurgesOnTime(t *testing.T) {
	env := quietEnv()
	var a *activities.Activities
	env.RegisterWorkflow(workflows.SubjectExpiryWorkflow)
	env.RegisterActivity(a)
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	env.SetStartTime(start)

	var mu sync.Mutex
	expires := start.Add(30 * 24 * time.Hour)
	purged := false
	var dispatched []time.Time
	var records []activities.ExpiryPurge
	env.OnActivity(a.LoadExpiry, mock.Anything, mock.Anything).Return(func(context.Context, string) (activities.ExpiryState, error) {
		mu.Lock()
		defer mu.Unlock()
		return activities.ExpiryState{TenantID: "salon", ExpiresAt: expires, Purged: purged, Connectors: []string{"salon-db"}}, nil
	})
	env.OnActivity(a.DispatchCommand, mock.Anything, mock.Anything).Return(func(_ context.Context, d activities.Dispatch) (domain.Output, error) {
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, "exp-1", d.ExpiryID, "the command carries the expiry's subject")
		require.Equal(t, "purge", d.Action)
		dispatched = append(dispatched, env.Now().UTC())
		if len(dispatched) == 1 {
			return domain.Output{}, temporal.NewNonRetryableApplicationError("blocked: a booking on 12 March", activities.ErrPermanent, nil)
		}
		return purgeOutput(t, connectors.PurgeResult{Rows: map[string]int64{"customers": 1, "bookings": 2}, Subjects: 1}), nil
	})
	env.OnActivity(a.RecordExpiryPurge, mock.Anything, mock.Anything).Return(func(_ context.Context, p activities.ExpiryPurge) error {
		mu.Lock()
		defer mu.Unlock()
		records = append(records, p)
		purged = len(p.Errors) == 0
		return nil
	})
	// A day in, the DPO moves the date forward to day 10.
	moved := start.Add(10 * 24 * time.Hour)
	env.RegisterDelayedCallback(func() {
		mu.Lock()
		expires = moved
		mu.Unlock()
		env.SignalWorkflow(workflows.ExpiryChangedSignal, nil)
	}, 24*time.Hour)

	env.ExecuteWorkflow(workflows.SubjectExpiryWorkflow, workflows.SubjectExpiryInput{ExpiryID: "exp-1"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, dispatched, 2)
	assert.Equal(t, moved, dispatched[0], "purged the moment the moved date passed")
	assert.Equal(t, moved.Add(workflows.ExpiryRetry), dispatched[1], "a refused purge is tried again a day later")
	require.Len(t, records, 2)
	assert.Contains(t, records[0].Errors["salon-db"], "blocked")
	assert.Empty(t, records[1].Errors)
	assert.EqualValues(t, 3, records[1].Rows["salon-db"])
	assert.Equal(t, moved, records[1].ExpiresAt)
}

// A run over more data than one history should hold continues as new, carrying its counts and
// the erase rule's cursor, and a dry run sends one dry_run command per connector.
func TestRetentionRunContinuesAsNewWithItsProgress(t *testing.T) {
	plan := activities.RetentionPlan{Batches: 2, ExportsAfter: 30 * 24 * time.Hour, Steps: []activities.RetentionStep{
		{Connector: "salon-db", Rule: "inactive_customers", OlderThan: 3 * 365 * 24 * time.Hour},
		{Connector: "salon-db", Rule: "past_bookings", OlderThan: 30 * 24 * time.Hour},
	}}
	run := func(in workflows.RetentionInput, commands *[]activities.Dispatch) (*testsuite.TestWorkflowEnvironment, *workflows.RetentionProgress) {
		env := quietEnv()
		var a *activities.Activities
		env.RegisterWorkflow(workflows.RetentionWorkflow)
		env.RegisterActivity(a)
		env.OnActivity(a.RetentionPlan, mock.Anything, "salon").Return(plan, nil)
		env.OnActivity(a.DispatchCommand, mock.Anything, mock.Anything).Return(func(_ context.Context, d activities.Dispatch) (domain.Output, error) {
			*commands = append(*commands, d)
			if d.Params["dry_run"] == true {
				return purgeOutput(t, connectors.PurgeResult{Rows: map[string]int64{"inactive_customers": 1000, "past_bookings": 7}, DryRun: true}), nil
			}
			rule := d.Params["rule"].(string)
			// The first rule has 60 commands' worth of subjects; the second one command's.
			res := connectors.PurgeResult{Rows: map[string]int64{rule: 10}}
			if rule == "inactive_customers" && len(*commands) < 60 {
				res.More, res.Cursor = true, "key-"+time.Duration(len(*commands)).String()
			}
			return purgeOutput(t, res), nil
		})
		env.OnActivity(a.ExpiredExports, mock.Anything, mock.Anything).Return(activities.ExportSweepResult{Count: 4}, nil)
		env.OnActivity(a.RecordRetentionRun, mock.Anything, mock.Anything).Return(nil)
		env.ExecuteWorkflow(workflows.RetentionWorkflow, in)
		require.True(t, env.IsWorkflowCompleted())
		var p *workflows.RetentionProgress
		if env.GetWorkflowError() == nil {
			require.NoError(t, env.GetWorkflowResult(&p))
		}
		return env, p
	}

	var commands []activities.Dispatch
	env, _ := run(workflows.RetentionInput{TenantID: "salon", Actor: "schedule"}, &commands)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "continued as new: %v", env.GetWorkflowError())
	require.Len(t, commands, workflows.RetentionCommandsPerRun)
	assert.EqualValues(t, 2, commands[0].Params["max_batches"])
	assert.Equal(t, commands[0].IdempotencyKey[:len(commands[0].IdempotencyKey)-2], commands[1].IdempotencyKey[:len(commands[1].IdempotencyKey)-2])
	assert.NotEqual(t, commands[0].IdempotencyKey, commands[1].IdempotencyKey, "each command has its own key")
	assert.Equal(t, commands[0].Params["older_than"], (3 * 365 * 24 * time.Hour).Seconds(), "the tenant's period")
	assert.Equal(t, "key-1ns", commands[1].Params["after"], "the next command goes on from the cursor")

	var carried workflows.RetentionInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &carried))
	require.NotNil(t, carried.Progress)
	assert.EqualValues(t, 500, carried.Progress.Rules[0].Rows)
	assert.Equal(t, 0, carried.Progress.Step)

	// The next run goes on from there and finishes, counting across both histories.
	env, p := run(carried, &commands)
	require.NoError(t, env.GetWorkflowError())
	assert.True(t, p.Done)
	assert.EqualValues(t, 600, p.Rules[0].Rows)
	assert.Equal(t, 60, p.Rules[0].Commands)
	assert.EqualValues(t, 10, p.Rules[1].Rows)

	var dry []activities.Dispatch
	env, p = run(workflows.RetentionInput{TenantID: "salon", DryRun: true, Actor: "ops"}, &dry)
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, dry, 1, "a dry run is one command per connector, its rules in the tenant's order")
	assert.Equal(t, true, dry[0].Params["dry_run"])
	assert.Len(t, dry[0].Params["rules"], 2)
	assert.NotContains(t, dry[0].Params, "max_batches")
	assert.EqualValues(t, 1000, p.Rules[0].Rows)
	assert.EqualValues(t, 7, p.Rules[1].Rows)
	assert.EqualValues(t, 4, p.Exports)
}
