package bench

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// FloorWorkflow is the floor Lethe is measured against: what the Temporal server itself needs
// for a workflow of four activities that do nothing.
func FloorWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for range 4 {
		if err := workflow.ExecuteActivity(ctx, FloorActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// FloorActivity does nothing.
func FloorActivity(context.Context) error { return nil }

// floor runs the floor's workflows on a worker in this process with the SDK's default
// options, like Lethe's.
type floor struct {
	st    *stack
	queue string
	w     worker.Worker
}

func (st *stack) startFloor(ctx context.Context) (*floor, error) {
	f := &floor{st: st, queue: "bench-floor-" + st.suffix}
	f.w = worker.New(st.lethe.Temporal, f.queue, worker.Options{})
	f.w.RegisterWorkflow(FloorWorkflow)
	f.w.RegisterActivity(FloorActivity)
	if err := f.w.Start(); err != nil {
		return nil, fmt.Errorf("starting the floor's worker: %w", err)
	}
	if _, err := pool(ctx, warmup, min(warmup, st.o.Concurrency), newProgress(nil, "", warmup), func(ctx context.Context, i int) error { return f.run(ctx, -1-i) }); err != nil {
		f.w.Stop()
		return nil, err
	}
	return f, nil
}

func (f *floor) run(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	wf, err := f.st.lethe.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: fmt.Sprintf("floor-%s-%d", f.st.suffix, i), TaskQueue: f.queue,
	}, FloorWorkflow)
	if err != nil {
		return err
	}
	return wf.Get(ctx, nil)
}

// round times workflows [from, from+n), o.Concurrency at a time.
func (f *floor) round(ctx context.Context, from, n int) Phase {
	ph, _ := pool(ctx, n, f.st.o.Concurrency, newProgress(f.st.o.Progress, "floor", n), func(ctx context.Context, i int) error {
		return f.run(ctx, from+i)
	})
	return ph
}

func (f *floor) stop() { f.w.Stop() }
