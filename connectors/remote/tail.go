package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/connectors/protocol"
)

// Tail follows topic (its name without k's prefix) on every
// partition from its current end: fn sees each message appended after Tail returns, so a caller
// that starts tailing before it publishes a request cannot miss the answer. No consumer group is involved, so nothing is committed and tailing never
// takes messages away from the topic's real consumers. fn is called from one goroutine per
// partition. Stop ends the tail and waits for it.
func Tail(ctx context.Context, k protocol.Kafka, topic string, log *slog.Logger, fn func(kafka.Message)) (stop func(), err error) {
	if log == nil {
		log = slog.Default()
	}
	brokers, topic := k.Brokers, k.Topic(topic)
	client := k.Client()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("reading partitions of %s: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil || len(meta.Topics[0].Partitions) == 0 {
		var terr error
		if len(meta.Topics) == 1 {
			terr = meta.Topics[0].Error
		}
		return nil, fmt.Errorf("topic %s is not available: %w", topic, errors.Join(errors.New("no partitions"), terr))
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	offs, err := endOffsets(ctx, client, topic, reqs)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, po := range offs {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: po.Partition, Dialer: k.Dialer,
			MinBytes: 1, MaxBytes: protocol.MaxMessageBytes, MaxWait: 100 * time.Millisecond,
		})
		if err := r.SetOffset(po.LastOffset); err != nil {
			_ = r.Close()
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("positioning on %s[%d]: %w", topic, po.Partition, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					log.Warn("reading topic; retrying", "topic", topic, "partition", po.Partition, "error", err)
					select {
					case <-ctx.Done():
						return
					case <-time.After(500 * time.Millisecond):
					}
					continue
				}
				fn(m)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }, nil
}

// endOffsets reads the partitions' end offsets. A topic created moments ago may still be
// electing its leaders, which the broker reports as a temporary error: that is retried
// (briefly, with backoff) instead of failing the caller.
func endOffsets(ctx context.Context, client *kafka.Client, topic string, reqs []kafka.OffsetRequest) ([]kafka.PartitionOffsets, error) {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return nil, fmt.Errorf("reading end offsets of %s: %w", topic, err)
		}
		var perr error
		for _, po := range offs.Topics[topic] {
			if po.Error != nil {
				perr = fmt.Errorf("reading end offset of %s[%d]: %w", topic, po.Partition, po.Error)
				break
			}
		}
		var kerr kafka.Error
		if perr == nil || !errors.As(perr, &kerr) || !kerr.Temporary() || attempt == 10 {
			return offs.Topics[topic], perr
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading end offsets of %s: %w", topic, ctx.Err())
		case <-time.After(delay):
			delay *= 2
		}
	}
}
