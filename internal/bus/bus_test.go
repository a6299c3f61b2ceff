package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type event struct {
	Schema     string    `json:"schema"`
	Version    int       `json:"version"`
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	TenantID   string    `json:"tenant_id"`
	RequestID  string    `json:"request_id"`
	Status     string    `json:"status"`
	OccurredAt time.Time `json:"occurred_at"`
}

func newEvent(id string) event {
	return event{Schema: "lethe.event", Version: 1, ID: id, Type: "request.status_changed",
		TenantID: "t1", RequestID: "r-" + id, Status: "received", OccurredAt: time.Now().UTC()}
}

// harness opens a bus on the real broker with a fresh topic (and a fresh DLQ reader position).
func harness(t *testing.T) (*bus.Bus, string) {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t), ClientID: "lethe-test", Partitions: 1, Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	topic := "lethe.test." + testenv.Suffix()
	if err := b.EnsureTopics(ctx, topic, bus.TopicDLQ); err != nil {
		t.Fatal(err)
	}
	return b, topic
}

// consume runs one consumer until the handler has succeeded on want messages and the group's
// committed offset has moved past the last of them, then stops it and returns what it saw.
func consume(t *testing.T, b *bus.Bus, topic, group string, want int, h bus.Handler) []bus.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var seen []bus.Message
	succeeded := 0
	reached := make(chan int64, 1)
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, bus.ConsumerOptions{Group: group, Topic: topic, Backoff: time.Millisecond, MaxAttempts: 3},
			func(ctx context.Context, m bus.Message) error {
				err := h(ctx, m)
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, m)
				if err == nil {
					if succeeded++; succeeded == want {
						reached <- m.Offset
					}
				}
				return err
			})
	}()
	select {
	case off := <-reached:
		waitCommitted(t, ctx, b, group, topic, off+1)
		cancel()
	case err := <-done:
		t.Fatalf("consumer stopped early: %v", err)
	case <-ctx.Done():
		t.Fatalf("timed out after %d messages", len(seen))
	}
	if err := <-done; err != nil {
		t.Fatalf("consume: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return seen
}

// waitCommitted polls the group's committed offset of partition 0 until it reaches want.
func waitCommitted(t *testing.T, ctx context.Context, b *bus.Bus, group, topic string, want int64) {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(b.Brokers()...)}
	for {
		res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
		if err == nil && len(res.Topics[topic]) == 1 && res.Topics[topic][0].CommittedOffset >= want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("offset %d of group %s never committed", want, group)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestPublishConsumeExplicitCommit(t *testing.T) {
	b, topic := harness(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := b.Publish(ctx, topic, "k", newEvent(fmt.Sprint("e", i))); err != nil {
			t.Fatal(err)
		}
	}
	group := "g-" + testenv.Suffix()
	first := consume(t, b, topic, group, 3, func(context.Context, bus.Message) error { return nil })
	if len(first) != 3 || first[0].Schema != "lethe.event" {
		t.Fatalf("first consumer saw %d messages (schema %q), want 3 lethe.event", len(first), first[0].Schema)
	}
	// Committed messages are not redelivered to the same group: the next one seen is the new one.
	if err := b.Publish(ctx, topic, "k", newEvent("e3")); err != nil {
		t.Fatal(err)
	}
	second := consume(t, b, topic, group, 1, func(context.Context, bus.Message) error { return nil })
	var got event
	if err := json.Unmarshal(second[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "e3" {
		t.Fatalf("after commit the group saw %q first, want e3", got.ID)
	}
}

func TestUncommittedMessageIsRedelivered(t *testing.T) {
	b, topic := harness(t)
	ctx := context.Background()
	if err := b.Publish(ctx, topic, "k", newEvent("once")); err != nil {
		t.Fatal(err)
	}
	group := "g-" + testenv.Suffix()
	// The handler's process "dies" mid-message: its context is canceled before it returns.
	cctx, cancel := context.WithCancel(ctx)
	err := b.Consume(cctx, bus.ConsumerOptions{Group: group, Topic: topic}, func(context.Context, bus.Message) error {
		cancel()
		return errors.New("interrupted")
	})
	if err != nil {
		t.Fatal(err)
	}
	again := consume(t, b, topic, group, 1, func(context.Context, bus.Message) error { return nil })
	if len(again) != 1 {
		t.Fatalf("uncommitted message not redelivered")
	}
	assertNoDeadLetter(t, b, topic)
}

func TestInvalidMessagesGoToDLQWithReason(t *testing.T) {
	b, topic := harness(t)
	ctx := context.Background()
	bad := newEvent("bad")
	bad.Type = "Not A Type"
	raw, _ := json.Marshal(bad)
	inputs := [][]byte{
		[]byte("{not json"),
		[]byte(`{"schema":"lethe.unknown","version":1}`),
		raw,
	}
	for _, in := range inputs {
		if err := b.PublishRaw(ctx, topic, "k", in); err != nil {
			t.Fatal(err)
		}
	}
	// A handler that refuses, and one that keeps failing: both end in the DLQ, not in a loop.
	if err := b.Publish(ctx, topic, "k", newEvent("refused")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, topic, "k", newEvent("flaky")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, topic, "k", newEvent("good")); err != nil {
		t.Fatal(err)
	}
	attempts := map[string]int{}
	seen := consume(t, b, topic, "g-"+testenv.Suffix(), 1, func(_ context.Context, m bus.Message) error {
		var e event
		_ = json.Unmarshal(m.Value, &e)
		attempts[e.ID]++
		switch e.ID {
		case "refused":
			return bus.Invalid(errors.New("request type not enabled for this tenant"))
		case "flaky":
			return errors.New("downstream unavailable")
		}
		return nil
	})
	if attempts["refused"] != 1 || attempts["flaky"] != 3 || attempts["good"] != 1 {
		t.Fatalf("handler attempts = %v, want refused 1, flaky 3 (MaxAttempts), good 1", attempts)
	}
	_ = seen
	dls := readDLQ(t, b, topic, 5)
	wantReasons := []string{"not valid JSON", "lethe.unknown", "/type", "not enabled for this tenant", "gave up after 3 attempts: downstream unavailable"}
	for i, want := range wantReasons {
		if !strings.Contains(dls[i].Reason, want) {
			t.Errorf("dead letter %d reason %q, want it to mention %q", i, dls[i].Reason, want)
		}
		if dls[i].SourceTopic != topic || dls[i].Value == nil {
			t.Errorf("dead letter %d lost its source or value: %+v", i, dls[i])
		}
	}
	if *dls[0].Value != "{not json" {
		t.Errorf("dead letter keeps %q, want the original bytes", *dls[0].Value)
	}
}

// readDLQ reads the dead letters from the source topic, in order, directly from the broker.
func readDLQ(t *testing.T, b *bus.Bus, source string, want int) []protocol.DeadLetter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Brokers(), Topic: bus.TopicDLQ, Partition: 0, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []protocol.DeadLetter
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading DLQ after %d of %d: %v", len(out), want, err)
		}
		var dl protocol.DeadLetter
		if err := json.Unmarshal(m.Value, &dl); err != nil {
			t.Fatalf("DLQ message is not a dead letter: %v", err)
		}
		if dl.SourceTopic == source {
			out = append(out, dl)
		}
	}
	return out
}

func assertNoDeadLetter(t *testing.T, b *bus.Bus, source string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", b.Brokers()[0], bus.TopicDLQ, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	last, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatal(err)
	}
	if last == 0 {
		return
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Brokers(), Topic: bus.TopicDLQ, Partition: 0, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Value), source) {
			t.Fatalf("unexpected dead letter for %s: %s", source, m.Value)
		}
		if m.Offset+1 >= last {
			return
		}
	}
}

func TestOpenUnreachableBrokerFailsFast(t *testing.T) {
	start := time.Now()
	_, err := bus.Open(context.Background(), bus.Config{Brokers: []string{"127.0.0.1:1"}})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if !strings.Contains(err.Error(), "cannot reach 127.0.0.1:1") {
		t.Fatalf("error %q does not name the broker", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Open took %v to fail", time.Since(start))
	}
}

// A broker that takes the connection and never answers is named with what happened, not with
// kafka-go's method name.
func TestOpenSilentBrokerSaysItDidNotAnswer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = bus.Open(ctx, bus.Config{Brokers: []string{l.Addr().String()}})
	if want := "cannot reach " + l.Addr().String() + ": no answer in time"; err == nil || err.Error() != want {
		t.Fatalf("Open error %v, want %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open error %v no longer unwraps to the deadline", err)
	}
}

// Every topic gets an explicit retention on the broker: new topics at creation, topics that
// already existed (an older deployment's) when EnsureTopics next runs.
func TestEnsureTopicsSetsRetention(t *testing.T) {
	ctx := context.Background()
	brokers := testenv.KafkaBrokers(t)
	prefix := "rt" + testenv.Suffix() + "."
	// A topic created without Lethe's settings, as by an older version or by hand.
	admin := &kafka.Client{Addr: kafka.TCP(brokers...)}
	if _, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: prefix + bus.TopicEvents, NumPartitions: 1, ReplicationFactor: 1},
	}}); err != nil {
		t.Fatal(err)
	}

	b, err := bus.Open(ctx, bus.Config{Brokers: brokers, ClientID: "lethe-test", Partitions: 1, TopicPrefix: prefix,
		Retention: bus.Retention{Results: 36 * time.Hour, Events: 90 * 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	topics := bus.Topics("salon-db")
	if err := b.EnsureTopics(ctx, topics...); err != nil {
		t.Fatal(err)
	}
	week := strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10)
	want := map[string]string{
		bus.TopicIntake: week, bus.TopicBreachIntake: week, bus.TopicConsent: week, protocol.CommandTopic("salon-db"): week, bus.TopicDLQ: week,
		bus.TopicResults: strconv.FormatInt((36 * time.Hour).Milliseconds(), 10),
		bus.TopicEvents:  strconv.FormatInt((90 * 24 * time.Hour).Milliseconds(), 10),
	}
	if len(want) != len(topics) {
		t.Fatalf("bus.Topics = %v, want the %d topics of %v", topics, len(want), want)
	}
	req := &kafka.DescribeConfigsRequest{}
	for _, topic := range topics {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: prefix + topic, ConfigNames: []string{"retention.ms"},
		})
	}
	// A broker applies an altered config from the metadata log a moment after the controller
	// accepted it, so the description is read until it settles.
	var got map[string]string
	for deadline := time.Now().Add(15 * time.Second); ; {
		got = describeRetention(t, admin, req, prefix)
		if fmt.Sprint(got) == fmt.Sprint(want) || time.Now().After(deadline) {
			break
		}
		<-time.After(100 * time.Millisecond)
	}
	for topic, ms := range want {
		if got[topic] != ms {
			t.Errorf("%s: retention.ms = %q, want %s", topic, got[topic], ms)
		}
	}
}

func describeRetention(t *testing.T, admin *kafka.Client, req *kafka.DescribeConfigsRequest, prefix string) map[string]string {
	t.Helper()
	res, err := admin.DescribeConfigs(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res.Resources {
		if r.Error != nil {
			t.Fatalf("describing %s: %v", r.ResourceName, r.Error)
		}
		for _, e := range r.ConfigEntries {
			// Only the topic's own setting (source 1, DYNAMIC_TOPIC_CONFIG) counts: the broker's
			// default is whatever that cluster happens to say.
			if e.ConfigName == "retention.ms" && e.ConfigSource == 1 {
				got[strings.TrimPrefix(r.ResourceName, prefix)] = e.ConfigValue
			}
		}
	}
	return got
}

// A message Lethe itself would refuse is never sent, and the error says it is invalid, so the
// caller can tell it from a broker outage and stop retrying.
func TestPublishMarksSchemaViolationsInvalid(t *testing.T) {
	b, topic := harness(t)
	bad := newEvent("r1:reminder:2026-02-09T00:00:00+01:00") // "+" is not allowed in an id
	err := b.Publish(context.Background(), topic, "k", bad)
	if err == nil || !bus.IsInvalid(err) {
		t.Fatalf("err = %v, want one marked invalid", err)
	}
	var se *schemas.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want the schema problem kept", err)
	}
	if err := b.Publish(context.Background(), topic, "k", newEvent("good")); err != nil || bus.IsInvalid(err) {
		t.Fatalf("valid message: %v", err)
	}
}

// A handler that panics on one message dead-letters that message; the consumer goes on.
func TestHandlerPanicIsDeadLetteredNotFatal(t *testing.T) {
	b, topic := harness(t)
	ctx := context.Background()
	for _, id := range []string{"boom", "after"} {
		if err := b.Publish(ctx, topic, "k", newEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	seen := consume(t, b, topic, "g-"+testenv.Suffix(), 1, func(_ context.Context, m bus.Message) error {
		var e event
		_ = json.Unmarshal(m.Value, &e)
		if e.ID == "boom" {
			var none map[string]int
			none["x"]++ // a bug: assignment to a nil map
		}
		return nil
	})
	var last event
	if len(seen) != 1 || json.Unmarshal(seen[0].Value, &last) != nil || last.ID != "after" {
		t.Fatalf("handler returned on %d messages, want only the one after the panic", len(seen))
	}
	dl := readDLQ(t, b, topic, 1)[0]
	if !strings.Contains(dl.Reason, "handler panicked: assignment to entry in nil map") || dl.Value == nil {
		t.Fatalf("dead letter = %+v", dl)
	}
}

// A command topic's message that is not a sealed command (here an old version-1 command with
// the subject in clear) is dead-lettered by reference only: the DLQ never gets a clear copy.
// A valid sealed command that fails is copied whole: it holds only ciphertext.
func TestCommandDeadLettersHoldNoClearIdentifiers(t *testing.T) {
	b, _ := harness(t)
	ctx := context.Background()
	connector := "dlq-" + testenv.Suffix()
	topic := protocol.CommandTopic(connector)
	if err := b.EnsureTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	clear := `{"schema":"lethe.connector.command","version":1,"id":"c1","idempotency_key":"r1:x:erase","request_id":"r1",` +
		`"tenant_id":"t1","connector":"` + connector + `","action":"erase","subject":{"email":"clear.subject@example.com"},` +
		`"task_token":"dGFzaw==","issued_at":"2026-03-01T09:30:00Z"}`
	if err := b.PublishRaw(ctx, topic, "r1", []byte(clear)); err != nil {
		t.Fatal(err)
	}
	k, _ := envelope.NewKey("k1", make([]byte, envelope.KeySize))
	ring, _ := envelope.NewRing(k)
	sealed := protocol.Command{Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion, ID: "c2", IdempotencyKey: "r2:x:erase",
		RequestID: "r2", TenantID: "t1", Connector: connector, Action: "erase", TaskToken: "dGFzaw==", IssuedAt: time.Now().UTC()}
	if err := sealed.Seal(ring, &connectors.Subject{Email: "sealed.subject@example.com"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, topic, "r2", sealed); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, topic, "r3", sealed); err != nil { // a last one that succeeds
		t.Fatal(err)
	}
	n := 0
	consume(t, b, topic, "g-"+connector, 1, func(context.Context, bus.Message) error {
		if n++; n == 1 {
			return bus.Invalid(errors.New("cannot open it"))
		}
		return nil
	})

	dls := readDLQ(t, b, topic, 2)
	for _, dl := range dls {
		raw, _ := json.Marshal(dl)
		for _, email := range []string{"clear.subject", "sealed.subject"} {
			if strings.Contains(string(raw), email) {
				t.Errorf("dead letter at offset %d holds %s in clear", dl.Offset, email)
			}
		}
	}
	if v := dls[0]; v.Value != nil || v.ValueBase64 != nil || v.ValueRef == nil || len(v.ValueRef.Head) != 0 || v.ValueRef.Bytes != len(clear) {
		t.Errorf("the clear command's dead letter = %+v, want a reference without its first bytes", v)
	}
	if v := dls[1]; v.Value == nil || !strings.Contains(*v.Value, `"sealed"`) {
		t.Errorf("the sealed command's dead letter = %+v, want a whole copy of its ciphertext", v)
	}
}

// A reason longer than lethe.dlq allows is cut (on a character boundary), not a reason to fail
// the dead letter and stop the consumer.
func TestLongReasonIsCut(t *testing.T) {
	b, topic := harness(t)
	ctx := context.Background()
	for _, id := range []string{"long", "next"} {
		if err := b.Publish(ctx, topic, "k", newEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	consume(t, b, topic, "g-"+testenv.Suffix(), 1, func(_ context.Context, m bus.Message) error {
		var e event
		_ = json.Unmarshal(m.Value, &e)
		if e.ID == "long" {
			return bus.Invalid(errors.New(strings.Repeat("é", 3000)))
		}
		return nil
	})
	dl := readDLQ(t, b, topic, 1)[0]
	if len(dl.Reason) > 1000 || !strings.HasPrefix(dl.Reason, "éé") || !utf8.ValidString(dl.Reason) {
		t.Fatalf("reason of %d bytes, want at most 1000 of whole characters", len(dl.Reason))
	}
}

// A retry hint is whole seconds, never sooner than asked and never past the schema's day.
func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 1, 300 * time.Millisecond: 1, 90 * time.Second: 90, 90*time.Second + time.Millisecond: 91, 48 * time.Hour: 86400,
	} {
		if got := protocol.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}

// A leader moving or a group rebalancing is waited out by the consumer; anything else stops it
// with the error.
func TestRetriableKafkaErrors(t *testing.T) {
	for err, want := range map[error]bool{
		kafka.NotLeaderForPartition:                                       true,
		fmt.Errorf("fetching: %w", kafka.LeaderNotAvailable):              true,
		kafka.RebalanceInProgress:                                         true,
		kafka.RequestTimedOut:                                             true,
		kafka.TopicAuthorizationFailed:                                    false,
		kafka.SASLAuthenticationFailed:                                    false,
		errors.New("dial tcp 10.0.0.5:9092: connect: connection refused"): false,
	} {
		if got := protocol.Retriable(err); got != want {
			t.Errorf("Retriable(%v) = %v, want %v", err, got, want)
		}
	}
}

// Each partition is handled in a lane of its own: a message waiting on one partition does not
// hold up the other's, while one partition's messages are handled one at a time, in order.
func TestPartitionsAreHandledSideBySideAndEachInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t), ClientID: "lethe-test", Partitions: 2, Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	topic := "lethe.test." + testenv.Suffix()
	if err := b.EnsureTopics(ctx, topic, bus.TopicDLQ); err != nil {
		t.Fatal(err)
	}
	// Two keys the producer's hash puts on different partitions.
	keys := map[int]string{}
	for i := 0; len(keys) < 2; i++ {
		k := fmt.Sprint("key-", i)
		p := (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(k)}, 0, 1)
		if _, ok := keys[p]; !ok {
			keys[p] = k
		}
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		if err := b.Publish(ctx, topic, keys[0], newEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, topic, keys[1], newEvent("b")); err != nil {
		t.Fatal(err)
	}
	started := map[string]chan struct{}{"a1": make(chan struct{}), "b": make(chan struct{})}
	var mu sync.Mutex
	var order []string
	inA := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(ctx, bus.ConsumerOptions{Group: "g-" + testenv.Suffix(), Topic: topic, Backoff: time.Millisecond, MaxAttempts: 1},
			func(ctx context.Context, m bus.Message) error {
				var e event
				if err := json.Unmarshal(m.Value, &e); err != nil {
					return err
				}
				other := map[string]string{"a1": "b", "b": "a1"}[e.ID]
				if other == "" { // a2, a3: never two of one partition at once
					mu.Lock()
					inA++
					busy := inA > 1
					order = append(order, e.ID)
					mu.Unlock()
					defer func() { mu.Lock(); inA--; mu.Unlock() }()
					if busy {
						t.Errorf("%s was handled while another message of its partition was", e.ID)
					}
					if e.ID == "a3" {
						cancel()
					}
					return nil
				}
				mu.Lock()
				if e.ID == "a1" {
					inA++
					order = append(order, e.ID)
				}
				mu.Unlock()
				close(started[e.ID])
				select {
				case <-started[other]:
				case <-time.After(time.Minute):
					t.Errorf("%s waited a minute for %s on the other partition: the partitions are handled one after the other", e.ID, other)
				}
				if e.ID == "a1" {
					mu.Lock()
					inA--
					mu.Unlock()
				}
				return nil
			})
	}()
	<-done
	if got := strings.Join(order, ","); got != "a1,a2,a3" {
		t.Errorf("partition 0 was handled in the order %s, want a1,a2,a3", got)
	}
}
