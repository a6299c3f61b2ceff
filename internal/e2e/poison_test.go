package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
)

// publishLarge writes values to a topic of the stack with a writer that allows messages as large
// as Lethe's topics accept (the bus's own writer is capped lower on purpose).
func (s *stack) publishLarge(topic, key string, values ...[]byte) {
	s.t.Helper()
	// The bus's transport: kafka-go's shared default one may cache metadata from before this
	// test's topics existed, and a writer does not retry a topic missing from that cache.
	w := &kafka.Writer{Addr: kafka.TCP(s.Deps.Bus.Brokers()...), Topic: s.Prefix + topic, BatchBytes: 8 << 20,
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: s.Deps.Bus.Transport()}
	defer w.Close()
	for _, v := range values {
		require.NoError(s.t, w.WriteMessages(context.Background(), kafka.Message{Key: []byte(key), Value: v}), "publishing %d bytes to %s", len(v), topic)
	}
}

// One oversized message on the results topic or on the request intake stops neither consumer:
// 900 KB of '<' (which JSON escapes to six times its size) and 5 MB of random bytes are each
// dead-lettered as a reference, and a valid message right after them is processed.
func TestOversizedMessagesAreDeadLetteredAndConsumersGoOn(t *testing.T) {
	s := newStack(t)
	s.Run("worker", s.Deps.RunWorker)
	s.Run("bridge", s.Deps.RunBridge)

	angles := bytes.Repeat([]byte("<"), 900_000)
	noise := make([]byte, 5_000_000)
	_, err := rand.Read(noise)
	require.NoError(t, err)
	want := map[string][]byte{}

	// Results: no connector runs; the test answers the command after the two poison messages.
	id := s.Submit(domain.TypeRestriction, connectors.Subject{Email: demo.ClearCustomerEmail})
	cmdMsg := s.nextMessage(protocol.CommandTopic("database"), func(m bus.Message) bool { return strings.Contains(string(m.Value), id) })
	var cmd protocol.Command
	require.NoError(t, json.Unmarshal(cmdMsg.Value, &cmd))
	s.publishLarge(bus.TopicResults, id, angles, noise)
	good := protocol.NewResult(cmd, protocol.StatusSucceeded, time.Now())
	good.Output = &protocol.Output{Result: json.RawMessage(`{"restricted":true,"rows":1}`)}
	require.NoError(t, s.Deps.Bus.Publish(context.Background(), bus.TopicResults, id, good))

	// Intake: the same two, then a valid request.
	intakeID := "poison-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "-")
	s.publishLarge(bus.TopicIntake, intakeID, angles, noise)
	valid, err := json.Marshal(map[string]any{"schema": "lethe.request.intake", "version": 1, "request_id": intakeID,
		"tenant_id": "salon", "type": domain.TypeAccess, "subject": map[string]string{"email": demo.ClearCustomerEmail}})
	require.NoError(t, err)
	require.NoError(t, s.Deps.Bus.PublishRaw(context.Background(), bus.TopicIntake, intakeID, valid))

	require.Equal(t, domain.StatusCompleted, s.Await(id).Status, "the result after the oversized ones completed the request")
	s.awaitWorkflow(intakeID)

	for _, src := range []string{bus.TopicResults, bus.TopicIntake} {
		want[src+" angles"], want[src+" noise"] = angles, noise
	}
	got := map[string]bool{}
	for len(got) < len(want) {
		m := s.nextMessage(bus.TopicDLQ, func(m bus.Message) bool {
			var dl protocol.DeadLetter
			_ = json.Unmarshal(m.Value, &dl)
			return (dl.Key == id || dl.Key == intakeID) && strings.Contains(string(m.Value), `"value_ref"`) && !got[refName(m.Value)]
		})
		name := refName(m.Value)
		got[name] = true
		var dl struct {
			protocol.DeadLetter
			Ref struct {
				Bytes  int64  `json:"bytes"`
				SHA256 string `json:"sha256"`
				Head   []byte `json:"head_base64"`
			} `json:"value_ref"`
		}
		require.NoError(t, json.Unmarshal(m.Value, &dl))
		orig, ok := want[name]
		require.True(t, ok, "unexpected dead letter %s", name)
		sum := sha256.Sum256(orig)
		assert.Equal(t, int64(len(orig)), dl.Ref.Bytes, name)
		assert.Equal(t, hex.EncodeToString(sum[:]), dl.Ref.SHA256, name)
		assert.Equal(t, orig[:len(dl.Ref.Head)], dl.Ref.Head, name)
		assert.NotEmpty(t, dl.Ref.Head, name)
		assert.Nil(t, dl.Value, "%s: no whole copy", name)
		assert.NotEmpty(t, dl.Reason, name)
	}
}

// refName names a referenced dead letter by its source topic and which poison it was.
func refName(raw []byte) string {
	var dl struct {
		Source string `json:"source_topic"`
		Ref    struct {
			Bytes int64 `json:"bytes"`
		} `json:"value_ref"`
	}
	_ = json.Unmarshal(raw, &dl)
	kind := "noise"
	if dl.Ref.Bytes == 900_000 {
		kind = "angles"
	}
	_, topic, _ := strings.Cut(dl.Source, ".lethe.")
	return "lethe." + topic + " " + kind
}

// awaitWorkflow waits until Temporal knows the workflow, i.e. the intake started the request.
func (s *stack) awaitWorkflow(id string) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := s.Deps.Temporal.DescribeWorkflowExecution(context.Background(), id, ""); err == nil {
			return
		}
		require.True(s.t, time.Now().Before(deadline), "request %s was never started from the intake", id)
		time.Sleep(50 * time.Millisecond)
	}
}
