package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
)

// nextMessage consumes one message from a topic of the stack with a throwaway group.
func (s *stack) nextMessage(topic string, match func(bus.Message) bool) bus.Message {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got bus.Message
	found := errors.New("found")
	err := s.Deps.Bus.Consume(ctx, bus.ConsumerOptions{Group: "probe-" + topic + "-" + time.Now().Format("150405.000000"), Topic: topic},
		func(_ context.Context, m bus.Message) error {
			if match(m) {
				got = m
				cancel()
			}
			return nil
		})
	require.NoError(s.t, err)
	require.NotNil(s.t, got.Value, "no matching message on %s: %v", topic, found)
	return got
}

// Malformed or unknown results go to lethe.dlq with the reason; none crashes the bridge, and
// a good result after them still completes the request.
func TestBridgeDeadLettersBadResultsAndKeepsGoing(t *testing.T) {
	s := newStack(t)
	s.Run("worker", s.Deps.RunWorker)
	s.Run("bridge", s.Deps.RunBridge)
	// No connector runs: the test answers the command itself.
	id := s.Submit(domain.TypeRestriction, connectors.Subject{Email: demo.ClearCustomerEmail})
	cmdMsg := s.nextMessage(protocol.CommandTopic("database"), func(m bus.Message) bool { return strings.Contains(string(m.Value), id) })
	var cmd protocol.Command
	require.NoError(t, json.Unmarshal(cmdMsg.Value, &cmd))

	good := protocol.NewResult(cmd, protocol.StatusSucceeded, time.Now())
	good.Output = &protocol.Output{Result: json.RawMessage(`{"restricted":true,"rows":1}`)}
	forged := good
	forged.TaskToken = base64.StdEncoding.EncodeToString([]byte("not a task token"))
	badStatus, _ := json.Marshal(good)
	badStatus = []byte(strings.Replace(string(badStatus), `"succeeded"`, `"done"`, 1))
	forgedRaw, _ := json.Marshal(forged)
	ctx := context.Background()
	for _, raw := range [][]byte{[]byte("{oops"), []byte(`{"schema":"lethe.event","version":1,"id":"e1","type":"request.status_changed","tenant_id":"salon","request_id":"` + id + `","occurred_at":"2026-01-01T00:00:00Z"}`), badStatus, forgedRaw} {
		require.NoError(t, s.Deps.Bus.PublishRaw(ctx, bus.TopicResults, id, raw))
	}
	require.NoError(t, s.Deps.Bus.Publish(ctx, bus.TopicResults, id, good))

	st := s.Await(id)
	require.Equal(t, domain.StatusCompleted, st.Status, "the good result after the bad ones completed the request")

	var reasons []string
	for len(reasons) < 4 {
		m := s.nextMessage(bus.TopicDLQ, func(m bus.Message) bool {
			var dl protocol.DeadLetter
			_ = json.Unmarshal(m.Value, &dl)
			return dl.Key == id && !slices.Contains(reasons, dl.Reason)
		})
		var dl protocol.DeadLetter
		require.NoError(t, json.Unmarshal(m.Value, &dl))
		require.NotNil(t, dl.Value, "the original message is kept")
		reasons = append(reasons, dl.Reason)
	}
	all := strings.Join(reasons, "\n")
	assert.Contains(t, all, "not valid JSON")
	assert.Contains(t, all, "not accepted on")
	assert.Contains(t, all, "/status")
	assert.Contains(t, all, "task token")
}

// The same request id submitted twice is one request and one workflow, also after the
// workflow has ended.
func TestDuplicateSubmissionIsOneRequest(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	svc := s.Deps.Requests()
	ctx := context.Background()
	sub := requests.Submission{RequestID: "dup-" + time.Now().Format("150405.000"), TenantID: "salon", Type: domain.TypeAccess,
		Subject: connectors.Subject{Email: demo.ClearCustomerEmail}, IdentityVerified: true}
	sub.RequestID = strings.ReplaceAll(sub.RequestID, ".", "-")
	id, err := svc.Submit(ctx, sub)
	require.NoError(t, err)
	_, err = svc.Submit(ctx, sub)
	require.ErrorIs(t, err, requests.ErrDuplicate)
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
	_, err = svc.Submit(ctx, sub)
	require.ErrorIs(t, err, requests.ErrDuplicate, "still a duplicate after the workflow closed")

	// Another tenant's id is never touched or revealed.
	other := sub
	other.TenantID = "other"
	_, err = svc.Submit(ctx, other)
	require.ErrorIs(t, err, requests.ErrInvalid, "unknown tenant")

	var n int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE request_id = $1 AND action = 'request.received'`, id).Scan(&n))
	assert.Equal(t, 1, n, "one request, one lifecycle")
}
