// Package runner serves one connector instance on Lethe's own bus and database: the public
// serve.Handler, fed by the bus's consumer (explicit commits, dead letters) and remembering
// results in store.Tasks. It is what `lethe connector NAME` runs, and what `lethe dev` runs
// in-process for each instance.
package runner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/connectors/serve"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/metrics"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

// Runner serves one connector instance (see serve.Handler for how its effects happen once).
type Runner struct {
	Connector connectors.Connector
	// Name is the instance served: its command topic, consumer group and the connector named
	// in its commands. Empty means the connector's registered name.
	Name string
	// Keys open the connector's sealed commands: its current key and any it rotated from.
	Keys    *envelope.Ring
	Bus     *bus.Bus
	Store   *store.Store
	Exports exportstore.Store
	Log     *slog.Logger
	// Metrics observes each command's duration and errors; nil observes nothing.
	Metrics *metrics.Metrics
	// Progress is how often a long command reports progress (a Temporal heartbeat through
	// the bridge). Zero means every 10 seconds.
	Progress time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Run consumes commands until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	name := r.name()
	if err := r.Connector.Check(ctx); err != nil {
		return fmt.Errorf("checking connector %s: %w", name, err)
	}
	if d, ok := r.Connector.(connectors.Deferrer); ok && d.Defers() {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go r.heartbeatHeld(ctx)
	}
	return r.Bus.Consume(ctx, bus.ConsumerOptions{
		Group: serve.Group(name), Topic: protocol.CommandTopic(name), Schemas: []string{schemas.ConnectorCommand},
	}, r.Handle)
}

// HeldFor is how long a held command is kept alive by heartbeats: the fan-out activity's
// start-to-close timeout, after which Temporal retries it with a new command anyway.
const HeldFor = time.Hour

// heartbeatHeld publishes progress for every command waiting for its answer (a webhook's
// callback), so its activity's heartbeat timeout does not retry it meanwhile.
func (r *Runner) heartbeatHeld(ctx context.Context) {
	t := time.NewTicker(cmp.Or(r.Progress, 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := r.Store.HeldCommands().Since(ctx, r.name(), r.now().Add(-HeldFor))
		if err != nil {
			r.Log.Warn("listing held commands for their heartbeats", "connector", r.name(), "error", err)
			continue
		}
		for _, raw := range held {
			var cmd protocol.Command
			if json.Unmarshal(raw, &cmd) != nil {
				continue
			}
			// A lost heartbeat is not fatal: the next one follows.
			_ = r.Bus.Publish(ctx, bus.TopicResults, cmd.RequestID, protocol.NewResult(cmd, protocol.StatusProgress, r.now()))
		}
	}
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) name() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Connector.Name()
}

// Handle performs one command message and publishes its result; a command that can never be
// served is marked bus.Invalid, so the bus dead-letters it.
func (r *Runner) Handle(ctx context.Context, m bus.Message) error {
	err := r.handler(r.now()).Handle(ctx, m.Value)
	if serve.IsUnservable(err) {
		return bus.Invalid(err)
	}
	return err
}

// Resume completes a held command (as store.HeldCommands keeps it) with do, the answer that
// came later: the result is remembered and published exactly as Handle would have.
func (r *Runner) Resume(ctx context.Context, held []byte, do serve.Do) error {
	return r.handler(r.now()).Resume(ctx, held, do)
}

// handler serves one command that arrived at start; its final result is timed from then.
func (r *Runner) handler(start time.Time) *serve.Handler {
	return &serve.Handler{
		Connector: r.Connector, Name: r.Name, Keys: r.Keys, Exports: r.Exports, Memory: memory{r.Store}, Held: held{r.Store},
		Log: r.Log, Progress: r.Progress, Now: r.Now,
		Publish: func(ctx context.Context, res protocol.Result) error {
			if res.Status != protocol.StatusProgress {
				r.Metrics.Command(r.name(), res.Action, errorCode(res.Error), r.now().Sub(start).Seconds())
			}
			return r.Bus.Publish(ctx, bus.TopicResults, res.RequestID, res)
		},
	}
}

// errorCode is a failed result's code for lethe_connector_errors_total, "" when it succeeded.
func errorCode(e *protocol.ResultError) string {
	switch {
	case e == nil:
		return ""
	case e.Code != "":
		return e.Code
	case e.Permanent:
		return "permanent"
	}
	return "transient"
}

// held keeps the commands of a deferring connector in store.HeldCommands.
type held struct{ store *store.Store }

func (h held) Hold(ctx context.Context, cmd protocol.Command, raw []byte) error {
	return h.store.HeldCommands().Hold(ctx, cmd.Connector, cmd.IdempotencyKey, raw, cmd.IssuedAt)
}

func (h held) Release(ctx context.Context, cmd protocol.Command) error {
	return h.store.HeldCommands().Release(ctx, cmd.Connector, cmd.IdempotencyKey)
}

// memory remembers results in store.Tasks (connector_tasks).
type memory struct{ store *store.Store }

func (m memory) Output(ctx context.Context, connector, key string) (*protocol.Output, bool, error) {
	raw, err := m.store.Tasks().Output(ctx, connector, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var out protocol.Output
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false, fmt.Errorf("decoding stored result of %s: %w", key, err)
	}
	return &out, true, nil
}

func (m memory) Remember(ctx context.Context, cmd protocol.Command, out *protocol.Output) error {
	return m.store.Tasks().Remember(ctx, store.Task{
		Connector: cmd.Connector, IdempotencyKey: cmd.IdempotencyKey, RequestID: cmd.RequestID, Action: cmd.Action, Output: out,
	})
}
