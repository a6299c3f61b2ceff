// Package runner serves one connector instance on Lethe's own bus and database: the public
// serve.Handler, fed by the bus's consumer (explicit commits, dead letters) and remembering
// results in store.Tasks. It is what `lethe connector NAME` runs, and what `lethe dev` runs
// in-process for each instance.
package runner

import (
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
	return r.Bus.Consume(ctx, bus.ConsumerOptions{
		Group: serve.Group(name), Topic: protocol.CommandTopic(name), Schemas: []string{schemas.ConnectorCommand},
	}, r.Handle)
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
	h := &serve.Handler{
		Connector: r.Connector, Name: r.Name, Keys: r.Keys, Exports: r.Exports, Memory: memory{r.Store},
		Log: r.Log, Progress: r.Progress, Now: r.Now,
		Publish: func(ctx context.Context, res protocol.Result) error {
			return r.Bus.Publish(ctx, bus.TopicResults, res.RequestID, res)
		},
	}
	err := h.Handle(ctx, m.Value)
	if serve.IsUnservable(err) {
		return bus.Invalid(err)
	}
	return err
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
