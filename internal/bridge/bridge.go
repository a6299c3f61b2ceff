// Package bridge completes Temporal activities from connector results: the other half of the
// asynchronous fan-out whose first half is activities.DispatchCommand.
package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

// Group is the consumer group of the bridge; replicas share the results topic.
const Group = "lethe-bridge"

// Bridge consumes lethe.connector.results and completes, fails or heartbeats the activity
// each result names by its task token, once the result matches the command recorded for that
// token (activities.DispatchCommand records it).
type Bridge struct {
	Bus      *bus.Bus
	Store    *store.Store
	Temporal client.Client
	Log      *slog.Logger
}

// Run consumes results until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	return b.Bus.Consume(ctx, bus.ConsumerOptions{
		Group: Group, Topic: bus.TopicResults, Schemas: []string{schemas.ConnectorResult},
	}, b.Handle)
}

// Handle applies one result. A result for an activity that no longer waits (it timed out and
// was retried, or a duplicate already completed it) is acknowledged and dropped: the retry's
// own result completes the retry. Anything that cannot be a result goes to the dead-letter
// topic with the reason.
func (b *Bridge) Handle(ctx context.Context, m bus.Message) error {
	res, token, err := decodeResult(m.Value)
	if err != nil {
		return err
	}
	cmd, err := b.Store.FindCommand(ctx, token)
	if errors.Is(err, store.ErrNoCommand) {
		return bus.Invalid(err)
	}
	if err != nil {
		return err
	}
	if err := matches(cmd, res); err != nil {
		return bus.Invalid(err)
	}
	log := b.Log.With("request_id", res.RequestID, "connector", res.Connector, "action", res.Action, "status", res.Status)
	if err := b.audit(ctx, cmd, res); err != nil {
		return err
	}
	switch res.Status {
	case protocol.StatusProgress:
		err = b.Temporal.RecordActivityHeartbeat(ctx, token, res.Connector+" "+res.Action+" in progress")
	case protocol.StatusSucceeded:
		out := protocol.Output{}
		if res.Output != nil {
			out = *res.Output
		}
		err = b.Temporal.CompleteActivity(ctx, token, out, nil)
	case protocol.StatusFailed:
		err = b.Temporal.CompleteActivity(ctx, token, nil, failure(res))
	default:
		return bus.Invalid(fmt.Errorf("unknown result status %q", res.Status))
	}
	var notFound *serviceerror.NotFound
	var invalid *serviceerror.InvalidArgument
	switch {
	case err == nil:
		log.Debug("result applied")
		return nil
	case errors.As(err, &notFound):
		log.Info("result for an activity that no longer waits; dropped")
		return nil
	case errors.As(err, &invalid):
		return bus.Invalid(fmt.Errorf("Temporal rejected the task token: %w", err))
	}
	return fmt.Errorf("completing activity for %s %s: %w", res.Connector, res.Action, err)
}

// audit records a connector's step in the request's audit trail, before the workflow learns of
// it: what the connector did (its counts and role result) or why it failed. The key is the
// command's, which names the attempt, so a redelivered result is recorded once. Connector
// results and errors carry no personal data (the connectors' contract).
func (b *Bridge) audit(ctx context.Context, cmd store.Command, res protocol.Result) error {
	detail := map[string]any{"connector": res.Connector, "action": res.Action, "command": cmd.ID}
	switch res.Status {
	case protocol.StatusSucceeded:
		if res.Output != nil && len(res.Output.Counts) > 0 {
			detail["counts"] = res.Output.Counts
		}
		switch {
		case res.Output == nil:
		case res.Action == string(connectors.CapBlockCheck):
			// A block's reason is written for the subject and may describe them: codes only.
			codes := []string{}
			for _, bl := range res.Output.Blocks {
				codes = append(codes, bl.Code)
			}
			detail["blocks"] = codes
		case len(res.Output.Result) > 0:
			detail["result"] = res.Output.Result
		}
	case protocol.StatusFailed:
		if res.Error != nil {
			detail["error"], detail["permanent"] = res.Error.Message, res.Error.Permanent
		}
	default:
		return nil
	}
	_, err := b.Store.Audit().Append(ctx, b.Store.Pool, store.Event{
		Key: cmd.ID + ":" + res.Status, TenantID: cmd.TenantID, Actor: "connector " + res.Connector,
		Action: "connector." + res.Status, RequestID: cmd.RequestID, Detail: detail,
	})
	return err
}

// decodeResult decodes a validated result and its task token; its errors are bus.Invalid.
func decodeResult(value []byte) (protocol.Result, []byte, error) {
	var res protocol.Result
	if err := json.Unmarshal(value, &res); err != nil {
		return res, nil, bus.Invalid(fmt.Errorf("decoding result: %w", err))
	}
	token, err := base64.StdEncoding.DecodeString(res.TaskToken)
	if err != nil || len(token) == 0 {
		return res, nil, bus.Invalid(errors.New("task_token is not base64"))
	}
	return res, token, nil
}

// matches checks that a result answers the command its task token was issued with, and that
// every export it names lies in that command's own export prefix: a token copied from another
// command, or a file of another request or connector, completes nothing.
func matches(cmd store.Command, res protocol.Result) error {
	for _, f := range []struct{ name, want, got string }{
		{"request_id", cmd.RequestID, res.RequestID},
		{"tenant_id", cmd.TenantID, res.TenantID},
		{"connector", cmd.Connector, res.Connector},
		{"action", cmd.Action, res.Action},
	} {
		if f.got != f.want {
			return fmt.Errorf("result does not match command %s: %s is %q, the task token was issued for %q", cmd.ID, f.name, f.got, f.want)
		}
	}
	if res.Output == nil {
		return nil
	}
	for i, e := range res.Output.Exports {
		if cmd.ExportPrefix == "" || !exportstore.Within(e.URI, cmd.ExportPrefix) {
			return fmt.Errorf("result of command %s: /output/exports/%d lies outside the export location of this request and connector", cmd.ID, i)
		}
	}
	return nil
}

// failure turns a failed result into the activity's error: permanent failures are not
// retried by Temporal, others are, per the workflow's retry policy, or after the connector's
// retry hint when it gave one.
func failure(res protocol.Result) error {
	msg, code, permanent := "connector failed", "transient", false
	var next time.Duration
	if res.Error != nil {
		msg, permanent, next = res.Error.Message, res.Error.Permanent, res.Error.RetryAfter()
		if res.Error.Code != "" {
			code = res.Error.Code
		}
	}
	if permanent {
		return temporal.NewNonRetryableApplicationError(msg, activities.ErrPermanent, nil, code)
	}
	return temporal.NewApplicationErrorWithOptions(msg, code, temporal.ApplicationErrorOptions{NextRetryDelay: next})
}
