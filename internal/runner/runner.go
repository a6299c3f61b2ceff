// Package runner serves one connector over Kafka: it consumes the connector's command topic,
// performs each command through the connectors SDK, and publishes the result. It is what
// `lethe connector NAME` runs, and what `lethe dev` runs in-process for each connector.
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
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

// Runner serves one connector. Exactly-once in effect comes from three parts together: the
// connector is idempotent by task key, the runner stores every success before publishing it
// (so a redelivered command is answered from the store), and the command is committed only
// after its result is published.
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

// Group is the consumer group of a connector's runners: replicas share its commands.
func Group(connector string) string { return "lethe-connector-" + connector }

// Run consumes commands until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	name := r.name()
	if err := r.Connector.Check(ctx); err != nil {
		return fmt.Errorf("checking connector %s: %w", name, err)
	}
	return r.Bus.Consume(ctx, bus.ConsumerOptions{
		Group: Group(name), Topic: protocol.CommandTopic(name), Schemas: []string{schemas.ConnectorCommand},
	}, r.Handle)
}

func (r *Runner) name() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Connector.Name()
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Handle performs one command message and publishes its result. It returns an error only when
// the result could not be published or stored, so the message is retried and never committed
// without an answer.
func (r *Runner) Handle(ctx context.Context, m bus.Message) error {
	var cmd protocol.Command
	if err := json.Unmarshal(m.Value, &cmd); err != nil {
		return bus.Invalid(fmt.Errorf("decoding command: %w", err))
	}
	if cmd.Connector != r.name() {
		return bus.Invalid(fmt.Errorf("command for connector %q arrived on the topic of %q", cmd.Connector, r.name()))
	}
	// A command that does not open can never be served: dead-lettered, holding only ciphertext.
	private, err := cmd.Open(r.Keys)
	if err != nil {
		return bus.Invalid(err)
	}
	log := r.Log.With("connector", cmd.Connector, "action", cmd.Action, "request_id", cmd.RequestID)

	if out, ok, err := r.stored(ctx, cmd); err != nil {
		return err
	} else if ok {
		log.Info("command already done; republishing its result")
		res := protocol.NewResult(cmd, protocol.StatusSucceeded, r.now())
		res.Output = out
		return r.Bus.Publish(ctx, bus.TopicResults, cmd.RequestID, res)
	}

	start := r.now()
	out, err := r.perform(ctx, cmd, private)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: leave the command uncommitted for the next runner
	}
	if err != nil {
		res := protocol.NewResult(cmd, protocol.StatusFailed, r.now())
		res.Error = classify(err)
		if blocks, ok := connectors.BlocksOf(err); ok {
			res.Output = &protocol.Output{Blocks: blocks}
		}
		log.Warn("command failed", "permanent", res.Error.Permanent, "code", res.Error.Code, "error", res.Error.Message)
		return r.Bus.Publish(ctx, bus.TopicResults, cmd.RequestID, res)
	}
	if role, _ := connectors.RoleOf(connectors.Capability(cmd.Action)); role.Stored {
		if err := r.remember(ctx, cmd, out); err != nil {
			return err
		}
	}
	res := protocol.NewResult(cmd, protocol.StatusSucceeded, r.now())
	res.Output = out
	if err := r.Bus.Publish(ctx, bus.TopicResults, cmd.RequestID, res); err != nil {
		return err
	}
	log.Info("command done", "duration", r.now().Sub(start).Round(time.Millisecond))
	return nil
}

// perform runs the action, reporting progress while it takes long.
func (r *Runner) perform(ctx context.Context, cmd protocol.Command, private protocol.Private) (*protocol.Output, error) {
	task := connectors.Task{Key: cmd.IdempotencyKey, RequestID: cmd.RequestID, TenantID: cmd.TenantID}
	if private.Subject != nil {
		task.Subject = *private.Subject
	}
	if len(private.Params) > 0 {
		if err := json.Unmarshal(private.Params, &task.Params); err != nil {
			return nil, connectors.Permanent(fmt.Errorf("decoding params: %w", err))
		}
	}
	action := connectors.Capability(cmd.Action)
	role, _ := connectors.RoleOf(action)
	var sink *exportSink
	sinks := connectors.Sinks{}
	if role.Sink != connectors.NoSink {
		if cmd.Export == nil {
			return nil, connectors.Permanent(fmt.Errorf("%s command has no export location", action))
		}
		sink = &exportSink{store: r.Exports, prefix: cmd.Export.Prefix(cmd.Connector)}
		defer sink.abort()
		switch role.Sink {
		case connectors.RecordsSink:
			sinks.Records = sink
		case connectors.SubjectsSink:
			sinks.Subjects = &subjectSink{export: sink}
		}
	}

	stop := r.reportProgress(ctx, cmd)
	res, err := connectors.Do(ctx, r.Connector, action, task, sinks)
	stop()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding %s result: %w", action, err)
	}
	out := &protocol.Output{Result: raw}
	switch v := res.(type) {
	case connectors.BlockResult:
		out.Blocks = append([]connectors.Block{}, v.Blocks...)
	case connectors.AccessResult:
		out.Exports, out.Counts = sink.refs, sink.counts
	case connectors.FindResult:
		if err := sinks.Subjects.(*subjectSink).close(ctx); err != nil {
			return nil, err
		}
		out.Exports, out.Counts = sink.refs, sink.counts
	}
	return out, nil
}

// reportProgress publishes a progress result every Progress interval until stop is called.
func (r *Runner) reportProgress(ctx context.Context, cmd protocol.Command) (stop func()) {
	every := r.Progress
	if every <= 0 {
		every = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// A lost heartbeat is not fatal: the next one or the result follows.
				_ = r.Bus.Publish(ctx, bus.TopicResults, cmd.RequestID, protocol.NewResult(cmd, protocol.StatusProgress, r.now()))
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (r *Runner) stored(ctx context.Context, cmd protocol.Command) (*protocol.Output, bool, error) {
	raw, err := r.Store.Tasks().Output(ctx, cmd.Connector, cmd.IdempotencyKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var out protocol.Output
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false, fmt.Errorf("decoding stored result of %s: %w", cmd.IdempotencyKey, err)
	}
	return &out, true, nil
}

func (r *Runner) remember(ctx context.Context, cmd protocol.Command, out *protocol.Output) error {
	return r.Store.Tasks().Remember(ctx, store.Task{
		Connector: cmd.Connector, IdempotencyKey: cmd.IdempotencyKey, RequestID: cmd.RequestID, Action: cmd.Action, Output: out,
	})
}

// classify turns a connector error into the result's error: permanent or not, with a code
// and the connector's retry hint.
func classify(err error) *protocol.ResultError {
	e := &protocol.ResultError{Message: err.Error(), Permanent: connectors.IsPermanent(err), Code: "transient"}
	switch {
	case errors.Is(err, connectors.ErrUnsupported):
		e.Code = "unsupported"
	case e.Permanent:
		e.Code = "permanent"
	}
	var blocked *connectors.BlockedError
	if errors.As(err, &blocked) {
		e.Code = "blocked"
	}
	if d, ok := connectors.RetryDelay(err); ok && !e.Permanent {
		e.RetryAfterSeconds = protocol.RetryAfterSeconds(d)
	}
	if len(e.Message) > 2000 {
		e.Message = e.Message[:2000]
	}
	return e
}
