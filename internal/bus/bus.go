// Package bus is Lethe's Kafka layer (segmentio/kafka-go): topic names, topic creation,
// a schema-checked producer, and a consumer loop with explicit commits and a dead-letter topic.
package bus

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/metrics"
)

// Lethe's topics (README, "Kafka topics"). Connector commands have one topic per connector
// (protocol.CommandTopic) so a slow system never holds up another and an outside connector can be
// granted its own only.
const (
	TopicIntake = "lethe.requests.intake"
	// TopicBreachIntake carries breaches to open (schemas/breach-intake).
	TopicBreachIntake = "lethe.breaches.intake"
	TopicConsent      = "lethe.consent.changes"
	TopicResults      = protocol.TopicResults
	TopicEvents       = "lethe.events"
	TopicDLQ          = protocol.TopicDLQ
)

// MaxMessageBytes is the largest message Lethe's topics accept (their max.message.bytes) and
// its consumers fetch. It is set on purpose above the broker's 1 MiB default so that an
// oversized message written by an outside producer reaches Lethe and is dead-lettered with
// a reference, instead of failing at the producer of a cluster whose brokers allow more.
const MaxMessageBytes = protocol.MaxMessageBytes

const maxMessageConfig = "max.message.bytes"

// isCommandTopic reports whether a topic's real name is a connector's command topic.
func (b *Bus) isCommandTopic(real string) bool {
	name, ok := strings.CutPrefix(real, b.cfg.TopicPrefix)
	return ok && strings.HasPrefix(name, "lethe.connector.") && strings.HasSuffix(name, ".commands")
}

// CoreTopics are the topics every deployment has; command topics are added per connector.
func CoreTopics() []string {
	return []string{TopicIntake, TopicBreachIntake, TopicConsent, TopicResults, TopicEvents, TopicDLQ}
}

// Topics are the topics of a deployment with these connectors: the core topics and one
// command topic each.
func Topics(connectors ...string) []string {
	all := CoreTopics()
	for _, c := range connectors {
		all = append(all, protocol.CommandTopic(c))
	}
	return all
}

// Retention is how long each kind of topic keeps its messages. Commands, results, dead letters
// and intake carry references to people (commands encrypted, intake in clear from the sender),
// so they are kept only as long as a stuck consumer could need to catch up. Zero fields take
// the defaults of DefaultRetention.
type Retention struct {
	Commands time.Duration // lethe.connector.<name>.commands, and any topic of no other kind
	Results  time.Duration // lethe.connector.results
	DLQ      time.Duration // lethe.dlq
	Intake   time.Duration // lethe.requests.intake, lethe.breaches.intake, lethe.consent.changes
	Events   time.Duration // lethe.events
}

// DefaultRetention keeps work topics for 7 days and status events for 30.
func DefaultRetention() Retention {
	week := 7 * 24 * time.Hour
	return Retention{Commands: week, Results: week, DLQ: week, Intake: week, Events: 30 * 24 * time.Hour}
}

func (r Retention) orDefault() Retention {
	d := DefaultRetention()
	return Retention{
		Commands: cmp.Or(r.Commands, d.Commands), Results: cmp.Or(r.Results, d.Results),
		DLQ: cmp.Or(r.DLQ, d.DLQ), Intake: cmp.Or(r.Intake, d.Intake), Events: cmp.Or(r.Events, d.Events),
	}
}

// Of is the retention of the topic with this (unprefixed) name.
func (r Retention) Of(topic string) time.Duration {
	switch {
	case topic == TopicResults:
		return r.Results
	case topic == TopicDLQ:
		return r.DLQ
	case topic == TopicEvents:
		return r.Events
	case topic == TopicIntake || topic == TopicBreachIntake || topic == TopicConsent:
		return r.Intake
	}
	return r.Commands
}

// retentionConfig is the topic setting that holds a retention.
const retentionConfig = "retention.ms"

// Config is what the bus needs to know about the cluster.
type Config struct {
	Brokers           []string
	ClientID          string
	Partitions        int
	ReplicationFactor int
	// TopicPrefix is put before every topic name, so environments (or test runs) can share a
	// cluster without seeing each other's messages. Empty in a dedicated cluster.
	TopicPrefix string
	// Retention is set on every topic EnsureTopics creates or finds.
	Retention Retention
	// TLS and SASL secure every connection to the cluster (producer, consumers, admin); nil
	// means plaintext and no authentication.
	TLS    *tls.Config
	SASL   sasl.Mechanism
	Logger *slog.Logger
	// Metrics counts dead letters; nil counts nothing.
	Metrics *metrics.Metrics
}

// Bus is a connection to one Kafka cluster. It is safe for concurrent use.
type Bus struct {
	cfg       Config
	transport *kafka.Transport
	client    *kafka.Client
	writer    *kafka.Writer
	log       *slog.Logger

	mu       sync.Mutex
	consumed []groupTopic // the consumer groups run, for ConsumerLag
}

// Open checks that a broker answers (so a wrong address fails at start, not at the first
// message) and prepares the producer.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("no brokers configured")
	}
	if cfg.Partitions < 1 {
		cfg.Partitions = 1
	}
	if cfg.ReplicationFactor < 1 {
		cfg.ReplicationFactor = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Retention = cfg.Retention.orDefault()
	// A short metadata TTL lets the writer see topics another process created after it started
	// within seconds instead of six (topics this bus creates are refreshed at once). kafka-go
	// also uses the TTL as the timeout of each metadata fetch, so it must not be so short that a
	// busy broker's answer misses it: at one second, a loaded broker made starts fail with
	// "context deadline exceeded".
	transport := &kafka.Transport{ClientID: cfg.ClientID, MetadataTTL: 3 * time.Second, TLS: cfg.TLS, SASL: cfg.SASL}
	b := &Bus{cfg: cfg, log: cfg.Logger, transport: transport}
	b.client, b.writer = b.Kafka().Client(), b.Kafka().Writer()
	if err := b.Check(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Brokers returns the configured broker addresses.
func (b *Bus) Brokers() []string { return b.cfg.Brokers }

// Dialer connects consumers to the cluster with the bus's TLS and SASL settings.
func (b *Bus) Dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: b.cfg.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: b.cfg.TLS, SASLMechanism: b.cfg.SASL}
}

// Kafka is the cluster as the public packages (connectors/protocol, connectors/remote) reach it.
func (b *Bus) Kafka() protocol.Kafka {
	return protocol.Kafka{Brokers: b.cfg.Brokers, TopicPrefix: b.cfg.TopicPrefix, Dialer: b.Dialer(), Transport: b.transport}
}

// Transport carries admin and metadata requests with the bus's TLS and SASL settings.
func (b *Bus) Transport() *kafka.Transport { return b.transport }

// Name identifies the dependency in readiness reports.
func (b *Bus) Name() string { return "kafka" }

// Check asks the cluster for its metadata with a short deadline.
func (b *Bus) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var lastErr error
	for _, addr := range b.cfg.Brokers {
		res, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Addr: kafka.TCP(addr), Topics: []string{}})
		if err == nil && len(res.Brokers) > 0 {
			return nil
		}
		if err == nil {
			err = errors.New("no brokers in metadata")
		}
		lastErr = fmt.Errorf("cannot reach %s: %w", addr, unwrapNet(err))
	}
	return lastErr
}

// topic is the real name of a topic on this cluster.
func (b *Bus) topic(name string) string { return b.cfg.TopicPrefix + name }

// Topic is the real name of a topic on this cluster, for clients that read it directly.
func (b *Bus) Topic(name string) string { return b.topic(name) }

// EnsureTopics creates the topics that do not exist yet, with the configured partitions,
// replication factor, retention and MaxMessageBytes. Topics that exist keep their partitions but
// get the configured retention and size limit, so a deployment whose topics predate the settings
// is brought in line.
func (b *Bus) EnsureTopics(ctx context.Context, topics ...string) error {
	req := &kafka.CreateTopicsRequest{}
	real := make([]string, len(topics))
	retention := map[string]string{} // real name -> retention.ms
	for i, t := range topics {
		real[i] = b.topic(t)
		retention[real[i]] = strconv.FormatInt(b.cfg.Retention.Of(t).Milliseconds(), 10)
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic: real[i], NumPartitions: b.cfg.Partitions, ReplicationFactor: b.cfg.ReplicationFactor,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: retentionConfig, ConfigValue: retention[real[i]]},
				{ConfigName: maxMessageConfig, ConfigValue: strconv.Itoa(MaxMessageBytes)},
			},
		})
	}
	res, err := b.client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	var errs []error
	alter := &kafka.IncrementalAlterConfigsRequest{}
	for topic, err := range res.Errors {
		switch {
		case errors.Is(err, kafka.TopicAlreadyExists):
			alter.Resources = append(alter.Resources, kafka.IncrementalAlterConfigsRequestResource{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
				Configs: []kafka.IncrementalAlterConfigsRequestConfig{
					{Name: retentionConfig, Value: retention[topic], ConfigOperation: kafka.ConfigOperationSet},
					{Name: maxMessageConfig, Value: strconv.Itoa(MaxMessageBytes), ConfigOperation: kafka.ConfigOperationSet},
				},
			})
		case err != nil:
			errs = append(errs, fmt.Errorf("creating topic %s: %w", topic, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := b.setRetention(ctx, alter); err != nil {
		return err
	}
	return b.awaitLeaders(ctx, real)
}

// setRetention applies the retention (and size limit) of topics that already existed.
func (b *Bus) setRetention(ctx context.Context, req *kafka.IncrementalAlterConfigsRequest) error {
	if len(req.Resources) == 0 {
		return nil
	}
	res, err := b.client.IncrementalAlterConfigs(ctx, req)
	if err != nil {
		return fmt.Errorf("setting the retention of existing topics: %w", err)
	}
	var errs []error
	for _, r := range res.Resources {
		if r.Error != nil {
			errs = append(errs, fmt.Errorf("setting the retention of topic %s: %w", r.ResourceName, r.Error))
		}
	}
	return errors.Join(errs...)
}

// awaitLeaders waits until every new partition has a leader, so the first publish succeeds.
func (b *Bus) awaitLeaders(ctx context.Context, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		if err == nil && allLed(res, len(topics)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for topic leaders: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func allLed(res *kafka.MetadataResponse, want int) bool {
	if len(res.Topics) < want {
		return false
	}
	for _, t := range res.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
	}
	return true
}

// Publish marshals msg to JSON, checks it against its schema (a message Lethe itself would
// reject is a bug, never sent), and writes it with acknowledgement from all in-sync replicas.
// A message that cannot be encoded or does not match its schema is an error marked Invalid
// (IsInvalid): sending it again cannot succeed.
func (b *Bus) Publish(ctx context.Context, topic, key string, msg any) error {
	data, err := protocol.Encode(msg)
	if err != nil {
		return Invalid(fmt.Errorf("message for %s: %w", topic, err))
	}
	return b.PublishRaw(ctx, topic, key, data)
}

// PublishRaw writes bytes as they are; it is for forwarding (dead letters, tests).
func (b *Bus) PublishRaw(ctx context.Context, topic, key string, value []byte) error {
	err := b.writer.WriteMessages(ctx, kafka.Message{Topic: b.topic(topic), Key: []byte(key), Value: value})
	if err != nil {
		return fmt.Errorf("publishing to %s: %w", topic, err)
	}
	return nil
}

// Close flushes and closes the producer.
func (b *Bus) Close() error { return b.writer.Close() }

// noAnswer is a broker that took the connection and said nothing before the deadline; it
// still unwraps to context.DeadlineExceeded.
type noAnswer struct{ err error }

func (e noAnswer) Error() string { return "no answer in time" }
func (e noAnswer) Unwrap() error { return e.err }

// unwrapNet is err as an operator reads it: the network error, or that the broker did not
// answer, without kafka-go's Go method names ("kafka.(*Client).Metadata: ...").
func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return noAnswer{err}
	}
	return err
}
