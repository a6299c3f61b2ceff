package bus

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/metrics"
	"github.com/lethe-privacy/lethe/schemas"
)

// Message is one record handed to a Handler, already checked against its schema.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	// Schema is the name of the schema the value matched, e.g. "lethe.connector.result".
	Schema string
}

// Handler processes one message. Returning nil commits it. An error wrapped with Invalid sends
// the message to the dead-letter topic at once; any other error is retried with backoff and,
// if MaxAttempts is set, dead-lettered after that many attempts with the last error as the
// reason. Handlers must therefore be
// idempotent: a message can be seen again after a crash before its commit.
type Handler func(ctx context.Context, m Message) error

type invalidError struct{ err error }

func (e invalidError) Error() string { return e.err.Error() }
func (e invalidError) Unwrap() error { return e.err }

// Invalid marks err as permanent: the message can never succeed and goes to the dead-letter
// topic with err as the reason. Publish marks the messages it refuses the same way.
func Invalid(err error) error { return invalidError{err} }

// IsInvalid reports whether err was marked with Invalid.
func IsInvalid(err error) bool {
	var ie invalidError
	return errors.As(err, &ie)
}

// ConsumerOptions configures one consumer-group loop over one topic.
type ConsumerOptions struct {
	Group string
	Topic string
	// Schemas lists the schema names accepted on this topic; anything else is dead-lettered.
	Schemas []string
	// MaxAttempts bounds retries of a failing handler before the message is dead-lettered.
	// Zero retries until the handler succeeds or ctx ends: an outage of a dependency (Temporal,
	// PostgreSQL) must hold the partition, not send good messages to the dead-letter topic.
	MaxAttempts int
	// Backoff is the first retry delay; it doubles up to 30 s.
	Backoff time.Duration
}

// Limits of a dead letter. A whole copy grows in encoding (JSON escapes '<' to six bytes, base64
// adds a third), so one whose encoding passes deadLetterMaxBytes, well under the writer's batch
// limit, is sent as a reference instead. maxReason is the schema's limit on reasons.
const (
	deadLetterMaxBytes = 256 << 10
	deadLetterHead     = 256
	maxKey             = 256
	maxReason          = 1000
)

// Consume runs fetch → validate → handle → commit until ctx ends. Offsets are committed only
// after the handler succeeded or the message was safely written to the dead-letter topic, so no
// message is ever committed past silently. Each partition has a lane of its own: its messages
// are handled and committed in order, while other partitions' go on meanwhile, so one slow
// message holds up its partition only and a process uses as many partitions as it was given
// (lethe bench found a bridge handling every result one after the other the longest wait of a
// request). It returns nil when ctx is canceled.
func (b *Bus) Consume(ctx context.Context, opts ConsumerOptions, h Handler) error {
	if opts.Backoff <= 0 {
		opts.Backoff = 200 * time.Millisecond
	}
	b.consuming(opts.Group, opts.Topic)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           b.cfg.Brokers,
		GroupID:           b.cfg.TopicPrefix + opts.Group,
		Topic:             b.topic(opts.Topic),
		MinBytes:          1,
		MaxBytes:          MaxMessageBytes, // the topics' own limit: every message they hold can be fetched
		MaxWait:           250 * time.Millisecond,
		CommitInterval:    0, // synchronous commits: CommitMessages returns once the broker has it
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		Dialer:            b.Dialer(),
	})
	defer r.Close()
	ctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	c := &consumer{b: b, r: r, opts: opts, h: h, log: b.log.With("topic", opts.Topic, "group", opts.Group), stop: stop, lanes: map[int]chan kafka.Message{}}
	fetchDelay := opts.Backoff
	for {
		km, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return c.failure()
			}
			if !protocol.Retriable(err) {
				return fmt.Errorf("fetching from %s: %w", opts.Topic, err)
			}
			// A partition whose leader moves (a broker restart, a topic just created) answers
			// this way until the metadata catch up: wait, not stop the consumer.
			c.log.Warn("fetch failed; retrying", "error", err)
			if fetchDelay, err = backoff(ctx, fetchDelay); err != nil {
				return c.failure()
			}
			continue
		}
		fetchDelay = opts.Backoff
		select {
		case c.lane(ctx, &wg, km.Partition) <- km:
		case <-ctx.Done():
			return c.failure()
		}
	}
}

// laneDepth is how many fetched messages a partition's lane holds, the reader's own queue size.
const laneDepth = 100

// consumer is one Consume loop and its partitions' lanes.
type consumer struct {
	b     *Bus
	r     *kafka.Reader
	opts  ConsumerOptions
	h     Handler
	log   *slog.Logger
	stop  context.CancelFunc
	lanes map[int]chan kafka.Message

	mu  sync.Mutex
	err error // the first failure of a lane, which stops the loop
}

// lane is the channel of a partition's lane, started on its first message.
func (c *consumer) lane(ctx context.Context, wg *sync.WaitGroup, partition int) chan kafka.Message {
	ch, ok := c.lanes[partition]
	if !ok {
		ch = make(chan kafka.Message, laneDepth)
		c.lanes[partition] = ch
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case km := <-ch:
					if err := c.process(ctx, km); err != nil {
						c.fail(err)
						return
					}
				}
			}
		}()
	}
	return ch
}

// process handles one message and commits it; an error stops the consumer.
func (c *consumer) process(ctx context.Context, km kafka.Message) error {
	m := Message{Topic: km.Topic, Partition: km.Partition, Offset: km.Offset, Key: km.Key, Value: km.Value}
	herr := c.b.handle(ctx, c.opts, &m, c.h)
	if ctx.Err() != nil {
		return nil // not committed: the next owner of the partition sees it again
	}
	if herr != nil {
		if err := c.b.deadLetter(ctx, m, herr); err != nil {
			return nil // only ctx ends the retries: not committed, the next owner sees it again
		}
		c.b.cfg.Metrics.DeadLettered(c.opts.Topic, reasonClass(herr))
		// The reason may quote the payload, so only coordinates reach the log.
		c.log.Warn("message dead-lettered", "partition", m.Partition, "offset", m.Offset)
	}
	if err := c.r.CommitMessages(ctx, km); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if !protocol.Retriable(err) {
			return fmt.Errorf("committing %s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		// Not committed: whoever owns the partition next sees the message again, and every
		// handler is idempotent by its message's key.
		c.log.Warn("commit failed; the message may be seen again", "partition", m.Partition, "offset", m.Offset, "error", err)
	}
	return nil
}

func (c *consumer) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.stop()
}

// failure is a lane's error once the loop stopped, nil when ctx ended it.
func (c *consumer) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// handle validates and runs the handler with retries; a non-nil result is the dead-letter reason.
func (b *Bus) handle(ctx context.Context, opts ConsumerOptions, m *Message, h Handler) error {
	name, err := schemas.Validate(m.Value)
	if err != nil {
		return classify(metrics.ReasonInvalid, err)
	}
	if len(opts.Schemas) > 0 && !slices.Contains(opts.Schemas, name) {
		return classify(metrics.ReasonNotAccepted, fmt.Errorf("schema %s is not accepted on %s", name, opts.Topic))
	}
	m.Schema = name
	delay := opts.Backoff
	for attempt := 1; ; attempt++ {
		err := b.call(ctx, h, *m)
		if err == nil || IsInvalid(err) || ctx.Err() != nil {
			return err
		}
		if opts.MaxAttempts > 0 && attempt >= opts.MaxAttempts {
			return classify(metrics.ReasonGaveUp, fmt.Errorf("gave up after %d attempts: %w", attempt, err))
		}
		b.log.Warn("handler failed; retrying", "topic", m.Topic, "partition", m.Partition,
			"offset", m.Offset, "attempt", attempt, "error", err)
		if delay, err = backoff(ctx, delay); err != nil {
			return err
		}
	}
}

// backoff waits delay, or until ctx ends, and returns the next delay: doubled, at most 30 s.
func backoff(ctx context.Context, delay time.Duration) (time.Duration, error) {
	select {
	case <-ctx.Done():
		return delay, ctx.Err()
	case <-time.After(delay):
	}
	return min(delay*2, 30*time.Second), nil
}

// call runs the handler, turning a panic into a dead-letter reason: a message that trips a bug
// would otherwise crash the process, and crash it again at every restart.
func (b *Bus) call(ctx context.Context, h Handler, m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			// The panic value may quote the message, so only the stack reaches the log.
			b.log.Error("handler panicked; dead-lettering the message", "topic", m.Topic, "partition", m.Partition,
				"offset", m.Offset, "stack", string(debug.Stack()))
			err = classify(metrics.ReasonPanic, Invalid(fmt.Errorf("handler panicked: %v", r)))
		}
	}()
	return h(ctx, m)
}

// deadLetter writes m to the dead-letter topic, whole if it fits and as a reference otherwise.
// A failure to write is retried until ctx ends: the dead-letter topic being unavailable is an
// outage that holds the partition, and no single message may stop the consumer.
func (b *Bus) deadLetter(ctx context.Context, m Message, reason error) error {
	dl := protocol.DeadLetter{
		Schema: schemas.DLQ, Version: 1, Reason: truncate(reason.Error(), maxReason),
		SourceTopic: m.Topic, Partition: m.Partition, Offset: m.Offset, FailedAt: time.Now().UTC(),
	}
	if dl.Reason == "" {
		dl.Reason = "unknown reason"
	}
	if len(m.Key) <= maxKey && utf8.Valid(m.Key) {
		dl.Key = string(m.Key)
	}
	key := m.Topic + "/" + strconv.Itoa(m.Partition)
	// On a command topic only a valid (sealed) command may be copied: anything else there, an
	// old version-1 command or a hand-written one, may hold identifiers in clear, so only its
	// size and digest go to the DLQ; the original stays at its offset until retention ends.
	if b.isCommandTopic(m.Topic) && m.Schema != schemas.ConnectorCommand {
		sum := sha256.Sum256(m.Value)
		dl.ValueRef = &protocol.ValueRef{Bytes: len(m.Value), SHA256: hex.EncodeToString(sum[:]), Head: []byte{}}
		return b.publishDeadLetter(ctx, m, key, dl)
	}
	whole := dl
	if utf8.Valid(m.Value) {
		v := string(m.Value)
		whole.Value = &v
	} else {
		v := base64.StdEncoding.EncodeToString(m.Value)
		whole.ValueBase64 = &v
	}
	if raw, err := json.Marshal(whole); err == nil && len(raw) <= deadLetterMaxBytes {
		err := b.Publish(ctx, TopicDLQ, key, whole)
		if err == nil {
			return nil
		}
		b.log.Warn("dead letter could not be written whole; writing a reference", "topic", m.Topic,
			"partition", m.Partition, "offset", m.Offset, "error", err)
	}
	sum := sha256.Sum256(m.Value)
	dl.ValueRef = &protocol.ValueRef{Bytes: len(m.Value), SHA256: hex.EncodeToString(sum[:]), Head: m.Value[:min(len(m.Value), deadLetterHead)]}
	return b.publishDeadLetter(ctx, m, key, dl)
}

// publishDeadLetter writes a reference-sized dead letter, retrying until it is written or ctx
// ends: the message is committed only after this returns nil.
func (b *Bus) publishDeadLetter(ctx context.Context, m Message, key string, dl protocol.DeadLetter) error {
	delay := 200 * time.Millisecond
	for {
		err := b.Publish(ctx, TopicDLQ, key, dl)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.log.Warn("writing a dead letter failed; retrying", "topic", m.Topic, "partition", m.Partition,
			"offset", m.Offset, "error", err)
		if delay, err = backoff(ctx, delay); err != nil {
			return err
		}
	}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
