// Package protocol is Lethe's Kafka wire format for connectors, the Go side of the contract in
// schemas/: the command a connector receives (its personal data sealed with connectors/envelope),
// the result it answers with, the exported table files large results are written to, the
// dead letter a command that cannot be served becomes, and the topics they travel on.
//
// Lethe's bus, runner and bridge use it, and so can a connector outside this module: nothing
// here is internal to Lethe. The tests hold every type to the schemas' field names.
package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/schemas"
)

// Topics of the connector plane (README, "Kafka topics"). Each connector instance has its own
// command topic, so a slow system never holds up another and an outside connector can be
// granted its own only.
const (
	TopicResults = "lethe.connector.results"
	TopicDLQ     = "lethe.dlq"
)

// CommandTopic is the topic on which one connector instance receives its commands.
func CommandTopic(connector string) string { return "lethe.connector." + connector + ".commands" }

// MaxMessageBytes is the largest message Lethe's topics accept; readers fetch up to it.
const MaxMessageBytes = 8 << 20

// Kafka says how to reach the cluster: what a connector outside Lethe needs to serve over it.
type Kafka struct {
	Brokers []string
	// TopicPrefix is put before every topic name (Lethe's bus.topic_prefix), so environments
	// can share a cluster.
	TopicPrefix string
	// Dialer and Transport carry TLS and SASL; nil means plaintext with kafka-go's defaults.
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
}

// Topic is the real name of a topic: its name with the prefix.
func (k Kafka) Topic(name string) string { return k.TopicPrefix + name }

// Writer is a producer for the cluster. Every in-sync replica must have a message before a
// write returns (a command or a result acknowledged must survive a broker failure), and
// messages go out at once: someone is waiting for each of them.
func (k Kafka) Writer() *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(k.Brokers...),
		Balancer:               &kafka.Hash{}, // one key (request id) always lands on one partition, in order
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond, // the default 1 s would delay every step
		MaxAttempts:            10,
		WriteBackoffMax:        500 * time.Millisecond,
		WriteTimeout:           10 * time.Second,
		BatchBytes:             1 << 20, // fits topics created elsewhere with the broker's default
		AllowAutoTopicCreation: false,   // topics are created on purpose, with set partitions
		Transport:              k.transport(),
	}
}

// Client is an admin client for the cluster (metadata, offsets).
func (k Kafka) Client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(k.Brokers...), Timeout: 15 * time.Second, Transport: k.transport()}
}

// transport is k.Transport or, without one, a transport of its own: kafka-go's shared default
// caches topic metadata for 6 s, too long to see a topic another process just created.
func (k Kafka) transport() *kafka.Transport {
	if k.Transport != nil {
		return k.Transport
	}
	t := &kafka.Transport{MetadataTTL: 3 * time.Second}
	if k.Dialer != nil {
		t.TLS, t.SASL, t.ClientID = k.Dialer.TLS, k.Dialer.SASLMechanism, k.Dialer.ClientID
	}
	return t
}

// Encode is msg as JSON, checked against its schema: a message that does not match is never
// sent. The error is an *EncodeError, so a caller can tell that sending it again cannot help.
func Encode(msg any) ([]byte, error) {
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, &EncodeError{fmt.Errorf("encoding message: %w", err)}
	}
	if _, err := schemas.Validate(data); err != nil {
		return nil, &EncodeError{fmt.Errorf("message does not match its schema: %w", err)}
	}
	return data, nil
}

// EncodeError is a message that cannot be encoded or does not match its schema.
type EncodeError struct{ Err error }

func (e *EncodeError) Error() string { return e.Err.Error() }
func (e *EncodeError) Unwrap() error { return e.Err }

// Retriable reports whether a Kafka error is one the broker itself calls temporary (a leader
// moving, a request timing out), or a group rebalancing under the consumer (the reader rejoins
// by itself): worth waiting out, never a reason to stop.
func Retriable(err error) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return false
	}
	switch kerr {
	case kafka.RebalanceInProgress, kafka.IllegalGeneration, kafka.UnknownMemberId:
		return true
	}
	return kerr.Temporary()
}
