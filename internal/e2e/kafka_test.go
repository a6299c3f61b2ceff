package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/schemas"
)

// After an access, a rectification and an erasure on the demo data, no topic of the stack holds
// a demo subject's email, phone, customer number or name, or a corrected value, in clear: from
// the first offset on, commands and their dead-letter copies included (the subject and params
// travel sealed). And every
// topic has its retention set on the broker, so even ciphertext does not stay for ever.
func TestKafkaHoldsNoPersonalDataInClear(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	ctx := context.Background()

	personal := map[string]string{} // value -> what it is, for the failure message
	customer := func(email string) connectors.Subject {
		var number, phone, first, last string
		require.NoError(t, s.Demo.QueryRow(ctx, `SELECT customer_number, phone, first_name, last_name FROM customers WHERE email = $1`, email).
			Scan(&number, &phone, &first, &last))
		for v, what := range map[string]string{email: "email", phone: "phone", number: "customer number", last: "last name", first + " " + last: "name"} {
			personal[v] = "the " + what + " of a demo customer"
		}
		return connectors.Subject{Email: email, Phone: phone, CustomerID: number}
	}
	access, rectify, erase := customer(demo.ClearCustomerEmail), customer(demo.HealthNotesCustomerEmail), customer(demo.UnpaidInvoiceCustomerEmail)
	changes := map[string]string{"last_name": "Quillfeather", "city": "Ravensmoor"}
	for _, v := range changes {
		personal[v] = "a corrected value"
	}

	id := s.Submit(domain.TypeAccess, access)
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
	id, err := s.Deps.Requests().Submit(ctx, requests.Submission{
		TenantID: "salon", Type: domain.TypeRectification, Subject: rectify, Changes: changes, IdentityVerified: true,
	})
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
	require.Equal(t, "Quillfeather", s.scalar(`SELECT last_name FROM customers WHERE customer_number = $1`, rectify.CustomerID), "the correction reached the connector")
	// Blocked by its unpaid invoice: the block check and its answer travel too.
	id = s.Submit(domain.TypeErasure, erase)
	st := s.awaitStatus(id, domain.StatusBlocked)
	require.NotEmpty(t, st.Blocks)

	// A command the runner cannot open (sealed for a key it does not hold) is dead-lettered:
	// the copy in lethe.dlq holds the ciphertext, never the subject.
	stray := protocol.Command{
		Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion, ID: "R-STRAY:database:erase:1",
		IdempotencyKey: "R-STRAY:database:erase", RequestID: "R-STRAY", TenantID: "salon", Connector: "database",
		Action: "erase", TaskToken: "c3RyYXk=", IssuedAt: time.Now().UTC(),
	}
	k, err := envelope.NewKey("elsewhere", make([]byte, envelope.KeySize))
	require.NoError(t, err)
	ring, err := envelope.NewRing(k)
	require.NoError(t, err)
	require.NoError(t, stray.Seal(ring, &access, nil))
	require.NoError(t, s.Deps.Bus.Publish(ctx, protocol.CommandTopic("database"), stray.RequestID, stray))
	s.nextMessage(bus.TopicDLQ, func(m bus.Message) bool { return strings.Contains(string(m.Value), stray.ID) })

	topics := s.topics()
	require.Contains(t, topics, s.Prefix+protocol.CommandTopic("database"))
	messages := 0
	for _, topic := range topics {
		for _, m := range s.readAll(topic) {
			messages++
			text := string(m.Key) + " " + string(m.Value)
			for v, what := range personal {
				// Case-sensitive: the demo's last names are words ("Unpaid") that readable
				// block reasons use in lower case. Emails are written in lower case.
				if strings.Contains(text, v) {
					t.Errorf("%s[%d]@%d holds %s in clear", strings.TrimPrefix(topic, s.Prefix), m.Partition, m.Offset, what)
				}
			}
		}
	}
	require.Greater(t, messages, 10, "the flows wrote commands, results and events")

	retention := s.retention(topics)
	for _, topic := range topics {
		assert.NotEmpty(t, retention[topic], "%s has no retention.ms of its own", topic)
	}
}

// topics lists the stack's topics (those with its prefix).
func (s *stack) topics() []string {
	s.t.Helper()
	md, err := (&kafka.Client{Addr: kafka.TCP(s.Deps.Bus.Brokers()...)}).Metadata(context.Background(), &kafka.MetadataRequest{})
	require.NoError(s.t, err)
	var out []string
	for _, t := range md.Topics {
		if strings.HasPrefix(t.Name, s.Prefix) {
			out = append(out, t.Name)
		}
	}
	return out
}

// readAll reads every partition of a topic from its first offset to its current end.
func (s *stack) readAll(topic string) []kafka.Message {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := s.Deps.Bus.Brokers()
	parts, err := kafka.LookupPartitions(ctx, "tcp", brokers[0], topic)
	require.NoError(s.t, err)
	var out []kafka.Message
	for _, p := range parts {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		require.NoError(s.t, err)
		first, last, err := conn.ReadOffsets()
		conn.Close()
		require.NoError(s.t, err)
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxBytes: 10 << 20})
		require.NoError(s.t, r.SetOffset(first))
		for {
			m, err := r.ReadMessage(ctx)
			require.NoError(s.t, err, "reading %s[%d]", topic, p.ID)
			out = append(out, m)
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// retention is each topic's own retention.ms on the broker ("" when the topic has none set).
func (s *stack) retention(topics []string) map[string]string {
	s.t.Helper()
	req := &kafka.DescribeConfigsRequest{}
	for _, t := range topics {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: t, ConfigNames: []string{"retention.ms"},
		})
	}
	res, err := (&kafka.Client{Addr: kafka.TCP(s.Deps.Bus.Brokers()...)}).DescribeConfigs(context.Background(), req)
	require.NoError(s.t, err)
	out := map[string]string{}
	for _, r := range res.Resources {
		require.NoError(s.t, r.Error, r.ResourceName)
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "retention.ms" && e.ConfigSource == 1 { // DYNAMIC_TOPIC_CONFIG: set for this topic
				out[r.ResourceName] = e.ConfigValue
			}
		}
	}
	return out
}
