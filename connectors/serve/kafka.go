package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/schemas"
)

// Kafka serves h on the instance's command topic until ctx ends, for a connector that runs
// outside Lethe: it fetches each command, performs it, and commits it only once its result is
// published. A failure to publish retries the same command with backoff. A command that can
// never be served (not a valid command, another instance's, or one that does not open) goes to
// lethe.dlq as a reference (its size and SHA-256, never its content: it may hold personal data)
// and is committed, so one bad message never stops the instance. Publish defaults to writing
// on lethe.connector.results of k. It returns nil when ctx is canceled.
func Kafka(ctx context.Context, k protocol.Kafka, h *Handler) error {
	if h.Log == nil {
		h.Log = slog.Default()
	}
	name := h.name()
	if err := h.Connector.Check(ctx); err != nil {
		return fmt.Errorf("checking connector %s: %w", name, err)
	}
	w := k.Writer()
	defer w.Close()
	publish := func(ctx context.Context, topic, key string, msg any) error {
		data, err := protocol.Encode(msg)
		if err != nil {
			return err
		}
		return w.WriteMessages(ctx, kafka.Message{Topic: k.Topic(topic), Key: []byte(key), Value: data})
	}
	if h.Publish == nil {
		h.Publish = func(ctx context.Context, res protocol.Result) error {
			return publish(ctx, protocol.TopicResults, res.RequestID, res)
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: k.Brokers, GroupID: k.TopicPrefix + Group(name), Topic: k.Topic(protocol.CommandTopic(name)),
		Dialer: k.Dialer, MinBytes: 1, MaxBytes: protocol.MaxMessageBytes, MaxWait: 250 * time.Millisecond,
		CommitInterval: 0, // synchronous: a commit returns once the broker has it
		StartOffset:    kafka.FirstOffset, HeartbeatInterval: time.Second,
	})
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if protocol.Retriable(err) {
			// A leader moving or the group rebalancing: wait it out, as Lethe's own consumers do.
			h.Log.Warn("fetching commands failed; retrying", "connector", name, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("fetching commands of %s: %w", name, err)
		}
		for delay := 200 * time.Millisecond; ; delay = min(2*delay, 30*time.Second) {
			if got, verr := schemas.Validate(m.Value); verr != nil || got != schemas.ConnectorCommand {
				err = unservable(errors.Join(errors.New("not a valid lethe.connector.command"), verr))
			} else {
				err = h.Handle(ctx, m.Value)
			}
			if IsUnservable(err) {
				err = deadLetter(ctx, publish, m, err)
			}
			if err == nil || ctx.Err() != nil {
				break
			}
			h.Log.Warn("command not done; retrying", "connector", name, "partition", m.Partition, "offset", m.Offset, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
		}
		if ctx.Err() != nil {
			return nil // uncommitted: the next runner performs it again, idempotent by key
		}
		if err := r.CommitMessages(ctx, m); err != nil && ctx.Err() == nil && !protocol.Retriable(err) {
			return fmt.Errorf("committing a command of %s: %w", name, err)
		}
	}
}

// deadLetter writes a reference to m on lethe.dlq.
func deadLetter(ctx context.Context, publish func(context.Context, string, string, any) error, m kafka.Message, reason error) error {
	sum := sha256.Sum256(m.Value)
	msg := reason.Error()
	if len(msg) > 1000 {
		msg = strings.ToValidUTF8(msg[:1000], "")
	}
	dl := protocol.DeadLetter{
		Schema: schemas.DLQ, Version: 1, Reason: msg, SourceTopic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		ValueRef: &protocol.ValueRef{Bytes: len(m.Value), SHA256: hex.EncodeToString(sum[:]), Head: []byte{}},
		FailedAt: time.Now().UTC(),
	}
	if err := publish(ctx, protocol.TopicDLQ, m.Topic+"/"+strconv.Itoa(m.Partition), dl); err != nil {
		return fmt.Errorf("dead-lettering offset %d: %w", m.Offset, err)
	}
	return nil
}
