package localstack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/internal/testenv"
)

// kafkaJarsDir is LETHE_KAFKA_JARS (set by deploy/test.sh), else where deploy/lib.sh puts them.
func kafkaJarsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LETHE_KAFKA_JARS")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(), ".lethe", "cache", "kafka-3.9.1")
	}
	if _, err := kafkaJars(dir); err != nil {
		testenv.Unavailable(t, err.Error()+" (or set LETHE_KAFKA_JARS; deploy/test.sh does both)")
	}
	if _, err := lookTool("java", javaInstallHint); err != nil {
		testenv.Unavailable(t, err.Error())
	}
	return dir
}

func startKafka(t *testing.T, jars, dir string) *Kafka {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := &syncBuffer{}
	k, err := StartKafka(ctx, KafkaOptions{JarsDir: jars, DataDir: dir, Log: log})
	if err != nil {
		t.Fatalf("%v\nbroker output:\n%s", err, log)
	}
	t.Cleanup(func() { _ = k.Stop() })
	return k
}

func TestKafkaServesKafkaGo(t *testing.T) {
	jars := kafkaJarsDir(t)
	dir := filepath.Join(serviceDir(t), "kafka")
	k := startKafka(t, jars, dir)
	topic := "lethe.localstack." + testenv.Suffix()
	group := "lethe-localstack-" + testenv.Suffix()
	createTopic(t, k.Brokers(), topic)
	produce(t, k.Brokers(), topic, "one", "two")
	if got := fetchAndCommit(t, k.Brokers(), topic, group, true); got != "one" {
		t.Fatalf("first fetch = %q", got)
	}
	if got := fetchAndCommit(t, k.Brokers(), topic, group, false); got != "two" {
		t.Fatalf("after committing %q the group fetched %q", "one", got)
	}

	// Stopping is a clean shutdown, and the same directory brings back the cluster with its
	// topic, messages and the group's committed offset.
	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	k = startKafka(t, jars, dir)
	if got := fetchAndCommit(t, k.Brokers(), topic, group, true); got != "two" {
		t.Fatalf("after restart the group fetched %q, want the uncommitted %q", got, "two")
	}
}

func TestKafkaMissingJarsSaysHowToFetchThem(t *testing.T) {
	_, err := StartKafka(context.Background(), KafkaOptions{JarsDir: t.TempDir(), DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("started without jars")
	}
	if _, javaErr := lookTool("java", javaInstallHint); javaErr != nil {
		if err.Error() != javaErr.Error() {
			t.Fatalf("without java: err = %v", err)
		}
		return
	}
	if want := "dependency:copy-dependencies"; !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want a hint containing %q", err, want)
	}
}

func TestKfakeServesKafkaGo(t *testing.T) {
	k, err := StartKfake(KfakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	topic := "lethe.localstack." + testenv.Suffix()
	group := "lethe-localstack-" + testenv.Suffix()
	createTopic(t, k.Brokers(), topic)
	produce(t, k.Brokers(), topic, "one", "two")
	if got := fetchAndCommit(t, k.Brokers(), topic, group, true); got != "one" {
		t.Fatalf("first fetch = %q", got)
	}
	if got := fetchAndCommit(t, k.Brokers(), topic, group, false); got != "two" {
		t.Fatalf("after committing %q the group fetched %q", "one", got)
	}
	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := k.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := kafkaAnswers(context.Background(), k.Brokers()[0]); err == nil {
		t.Fatal("the broker still answers after Stop")
	}
}

func createTopic(t *testing.T, brokers []string, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("creating topic: %v", err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("creating topic: %v", err)
	}
}

func produce(t *testing.T, brokers []string, topic string, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	for _, v := range values {
		msgs = append(msgs, kafka.Message{Key: []byte("k"), Value: []byte(v)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// fetchAndCommit joins the group, fetches one message, optionally commits it, and leaves.
func fetchAndCommit(t *testing.T, brokers []string, topic, group string, commit bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: group, Topic: topic, StartOffset: kafka.FirstOffset,
		MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("fetching from %s as %s: %v", topic, group, err)
	}
	if commit {
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("committing: %v", err)
		}
	}
	return string(m.Value)
}
