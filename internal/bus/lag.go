package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/internal/metrics"
)

type groupTopic struct{ group, topic string }

// consuming records that this bus runs a consumer of group on topic, for ConsumerLag.
func (b *Bus) consuming(group, topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gt := (groupTopic{group, topic}); !slices.Contains(b.consumed, gt) {
		b.consumed = append(b.consumed, gt)
	}
}

// ConsumerLag is, for every consumer group this bus has run, how many messages of its topic it
// has yet to commit: each partition's end offset minus the group's committed offset (from the
// partition's start when it never committed), summed. Names are without the topic prefix.
func (b *Bus) ConsumerLag(ctx context.Context) ([]metrics.GroupLag, error) {
	b.mu.Lock()
	pairs := slices.Clone(b.consumed)
	b.mu.Unlock()
	var out []metrics.GroupLag
	var errs []error
	for _, p := range pairs {
		n, err := b.lag(ctx, p.group, p.topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, metrics.GroupLag{Group: p.group, Topic: p.topic, Lag: n})
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (b *Bus) lag(ctx context.Context, group, topic string) (int64, error) {
	real := b.topic(topic)
	meta, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{real}})
	if err != nil || len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return 0, fmt.Errorf("reading the partitions of %s: %w", topic, errors.Join(err, topicError(meta)))
	}
	var parts []int
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		parts = append(parts, p.ID)
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	offs, err := b.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{real: reqs}})
	if err != nil {
		return 0, fmt.Errorf("reading the end offsets of %s: %w", topic, err)
	}
	committed, err := b.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: b.cfg.TopicPrefix + group, Topics: map[string][]int{real: parts}})
	if err != nil {
		return 0, fmt.Errorf("reading the offsets group %s committed on %s: %w", group, topic, err)
	}
	done := map[int]int64{}
	for _, p := range committed.Topics[real] {
		done[p.Partition] = p.CommittedOffset
	}
	var total int64
	for _, po := range offs.Topics[real] {
		if po.Error != nil {
			return 0, fmt.Errorf("reading the end offset of %s[%d]: %w", topic, po.Partition, po.Error)
		}
		from, ok := done[po.Partition]
		if !ok || from < po.FirstOffset {
			from = po.FirstOffset // never committed, or committed before what retention kept
		}
		total += max(po.LastOffset-from, 0)
	}
	return total, nil
}

func topicError(meta *kafka.MetadataResponse) error {
	if meta == nil || len(meta.Topics) == 0 {
		return errors.New("no such topic")
	}
	if meta.Topics[0].Error != nil {
		return meta.Topics[0].Error
	}
	return nil
}

// classed is a dead-letter reason with its class for lethe_dlq_messages_total; its text is the
// reason's own.
type classed struct {
	class string
	err   error
}

func (c classed) Error() string { return c.err.Error() }
func (c classed) Unwrap() error { return c.err }

func classify(class string, err error) error { return classed{class, err} }

// reasonClass is err's class: the one handle gave it, else a refusal by the handler.
func reasonClass(err error) string {
	var c classed
	if errors.As(err, &c) {
		return c.class
	}
	return metrics.ReasonRejected
}
