// Package serve serves one connector instance over Kafka: it consumes the instance's command
// topic, opens each command, performs it through the connectors SDK, writes large results to
// the export store as table files and publishes the result, all in the wire format of
// connectors/protocol. Lethe's own runner (`lethe connector NAME`) is this Handler on Lethe's
// bus and database; a connector outside Lethe runs it with Kafka (see
// deploy/examples/go-connector).
package serve

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
)

// Handler performs the commands of one connector instance. Exactly-once in effect comes from
// three parts together: the connector is idempotent by task key, a Memory remembers every
// success before it is published (so a redelivered command is answered from it), and the
// command is committed only after its result is published.
type Handler struct {
	Connector connectors.Connector
	// Name is the instance served: the connector named in its commands. Empty means the
	// connector's registered name.
	Name string
	// Keys open the instance's sealed commands: its current key and any it rotated from.
	Keys    *envelope.Ring
	Exports exportstore.Store
	// Publish sends a result on lethe.connector.results.
	Publish func(ctx context.Context, res protocol.Result) error
	// Memory remembers the outputs of succeeded commands whose role keeps its result
	// (connectors.Role.Stored); nil remembers nothing, leaving redeliveries to the connector's
	// own idempotency by key.
	Memory Memory
	Log    *slog.Logger
	// Progress is how often a long command reports progress (a Temporal heartbeat through
	// Lethe's bridge). Zero means every 10 seconds.
	Progress time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Held keeps the commands of a connector that may answer later (connectors.Deferrer) until
	// their answer is published; nil keeps none, and such a connector cannot defer.
	Held Held
}

// Held keeps commands whose answer may come later than the call (connectors.Deferred).
type Held interface {
	// Hold keeps cmd, whose message value is raw, until Release; holding a key again replaces it.
	Hold(ctx context.Context, cmd protocol.Command, raw []byte) error
	Release(ctx context.Context, cmd protocol.Command) error
}

// Do performs an action; the default is connectors.Do on the Handler's connector. Resume
// takes another, which applies an answer that came later.
type Do func(ctx context.Context, action connectors.Capability, task connectors.Task, sinks connectors.Sinks) (any, error)

// Group is the consumer group of an instance's runners: replicas share its commands.
func Group(connector string) string { return "lethe-connector-" + connector }

// Memory keeps the output of each succeeded command by connector and idempotency key.
type Memory interface {
	// Output returns the remembered output, ok false when there is none.
	Output(ctx context.Context, connector, key string) (out *protocol.Output, ok bool, err error)
	// Remember keeps out for cmd; remembering a key twice keeps the first.
	Remember(ctx context.Context, cmd protocol.Command, out *protocol.Output) error
}

// UnservableError is a command that can never be served: it does not decode, names another
// instance, or does not open with the instance's keys. Its message holds no personal data.
type UnservableError struct{ Err error }

func (e *UnservableError) Error() string { return e.Err.Error() }
func (e *UnservableError) Unwrap() error { return e.Err }

func unservable(err error) error { return &UnservableError{err} }

// IsUnservable reports whether err says the command can never be served.
func IsUnservable(err error) bool {
	var u *UnservableError
	return errors.As(err, &u)
}

func (h *Handler) name() string {
	if h.Name != "" {
		return h.Name
	}
	return h.Connector.Name()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Handle performs one command (the value of a message on the instance's command topic) and
// publishes its result. It returns an error only when the result could not be published or
// remembered, so the message is retried and never committed without an answer; an error
// for which IsUnservable holds means the command can never be served.
func (h *Handler) Handle(ctx context.Context, value []byte) error {
	return h.handle(ctx, value, func(ctx context.Context, action connectors.Capability, task connectors.Task, sinks connectors.Sinks) (any, error) {
		return connectors.Do(ctx, h.Connector, action, task, sinks)
	})
}

// Resume completes a held command (its message value) with do in place of the connector's call:
// the answer of a deferred task, which then becomes the same result, remembered and published,
// as if the call had returned it.
func (h *Handler) Resume(ctx context.Context, value []byte, do Do) error {
	return h.handle(ctx, value, do)
}

func (h *Handler) handle(ctx context.Context, value []byte, do Do) error {
	var cmd protocol.Command
	if err := json.Unmarshal(value, &cmd); err != nil {
		return unservable(fmt.Errorf("decoding command: %w", err))
	}
	if cmd.Connector != h.name() {
		return unservable(fmt.Errorf("command for connector %q arrived on the topic of %q", cmd.Connector, h.name()))
	}
	// A command that does not open can never be served: dead-lettered, holding only ciphertext.
	private, err := cmd.Open(h.Keys)
	if err != nil {
		return unservable(err)
	}
	log := h.Log.With("connector", cmd.Connector, "action", cmd.Action, "request_id", cmd.RequestID)

	if out, ok, err := h.remembered(ctx, cmd); err != nil {
		return err
	} else if ok {
		log.Info("command already done; republishing its result")
		res := protocol.NewResult(cmd, protocol.StatusSucceeded, h.now())
		res.Output = out
		return h.Publish(ctx, res)
	}

	holds := h.holds()
	if holds {
		if err := h.Held.Hold(ctx, cmd, value); err != nil {
			return err
		}
	}
	start := h.now()
	out, err := h.perform(ctx, cmd, private, do)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: leave the command uncommitted for the next runner
	}
	if connectors.IsDeferred(err) && !holds {
		err = fmt.Errorf("%s deferred its answer, but this runner keeps no held commands to complete later: %w", cmd.Connector, err)
	} else if connectors.IsDeferred(err) {
		log.Info("command accepted; its answer comes later")
		return h.Publish(ctx, protocol.NewResult(cmd, protocol.StatusProgress, h.now()))
	}
	if err := h.answer(ctx, log, cmd, out, err, start); err != nil {
		return err
	}
	if holds {
		return h.Held.Release(ctx, cmd)
	}
	return nil
}

// holds reports whether the connector may defer, so its commands are held.
func (h *Handler) holds() bool {
	d, ok := h.Connector.(connectors.Deferrer)
	return ok && d.Defers() && h.Held != nil
}

// answer publishes the result of a performed command, remembering a success first.
func (h *Handler) answer(ctx context.Context, log *slog.Logger, cmd protocol.Command, out *protocol.Output, err error, start time.Time) error {
	if err != nil {
		res := protocol.NewResult(cmd, protocol.StatusFailed, h.now())
		res.Error = classify(err)
		if blocks, ok := connectors.BlocksOf(err); ok {
			res.Output = &protocol.Output{Blocks: blocks}
		}
		log.Warn("command failed", "permanent", res.Error.Permanent, "code", res.Error.Code, "error", res.Error.Message)
		return h.Publish(ctx, res)
	}
	if role, _ := connectors.RoleOf(connectors.Capability(cmd.Action)); role.Stored {
		if err := h.remember(ctx, cmd, out); err != nil {
			return err
		}
	}
	res := protocol.NewResult(cmd, protocol.StatusSucceeded, h.now())
	res.Output = out
	if err := h.Publish(ctx, res); err != nil {
		return err
	}
	log.Info("command done", "duration", h.now().Sub(start).Round(time.Millisecond))
	return nil
}

// perform runs the action, reporting progress while it takes long.
func (h *Handler) perform(ctx context.Context, cmd protocol.Command, private protocol.Private, do Do) (*protocol.Output, error) {
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
		sink = &exportSink{store: h.Exports, prefix: cmd.Export.Prefix(cmd.Connector)}
		defer sink.abort()
		switch role.Sink {
		case connectors.RecordsSink:
			sinks.Records = sink
		case connectors.SubjectsSink:
			sinks.Subjects = &subjectSink{export: sink}
		}
	}

	stop := h.reportProgress(ctx, cmd)
	res, err := do(ctx, action, task, sinks)
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
func (h *Handler) reportProgress(ctx context.Context, cmd protocol.Command) (stop func()) {
	every := h.Progress
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
				_ = h.Publish(ctx, protocol.NewResult(cmd, protocol.StatusProgress, h.now()))
			}
		}
	}()
	return func() { cancel(); <-done }
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

func (h *Handler) remembered(ctx context.Context, cmd protocol.Command) (*protocol.Output, bool, error) {
	if h.Memory == nil {
		return nil, false, nil
	}
	return h.Memory.Output(ctx, cmd.Connector, cmd.IdempotencyKey)
}

func (h *Handler) remember(ctx context.Context, cmd protocol.Command, out *protocol.Output) error {
	if h.Memory == nil {
		return nil
	}
	return h.Memory.Remember(ctx, cmd, out)
}
