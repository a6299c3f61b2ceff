package remote

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// Tail follows the bus's own topic, prefix included: with a topic prefix (environments sharing
// one cluster) the remote connector must still see its results.
func TestTailFollowsThePrefixedTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t), ClientID: "lethe-tail-test",
		TopicPrefix: "tail-" + testenv.Suffix() + ".", Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.EnsureTopics(ctx, bus.TopicEvents); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	stop, err := Tail(ctx, b.Kafka(), bus.TopicEvents, nil, func(m kafka.Message) { got <- string(m.Key) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ev := bus.Event{Schema: "lethe.event", Version: 1, ID: "e1", Type: "request.status_changed", TenantID: "t1",
		RequestID: "r1", Status: "received", OccurredAt: time.Now().UTC()}
	if err := b.Publish(ctx, bus.TopicEvents, "tailed", ev); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-got:
		if k != "tailed" {
			t.Fatalf("tailed %q", k)
		}
	case <-ctx.Done():
		t.Fatal("the message published on the prefixed topic never reached the tail")
	}
}
