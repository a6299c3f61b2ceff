// Command shop-connector serves the example shop over Kafka as a Lethe connector instance.
//
//	LETHE_KAFKA_BROKERS=localhost:9092 LETHE_CONNECTOR_NAME=shop \
//	LETHE_CONNECTOR_KEYS=k1=$(openssl rand -base64 32) LETHE_EXPORT_DIR=/var/lib/lethe/exports \
//	shop-connector
//
// LETHE_TOPIC_PREFIX is Lethe's bus.topic_prefix, if it has one. The keys are the instance's
// (Lethe seals its commands with them); the export directory is the one Lethe reads exports from.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"example.com/lethe-go-connector"

	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/connectors/serve"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "shop-connector:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := os.Getenv("LETHE_KAFKA_BROKERS")
	if brokers == "" {
		return errors.New("LETHE_KAFKA_BROKERS is not set")
	}
	keys, err := envelope.ParseRing(os.Getenv("LETHE_CONNECTOR_KEYS"))
	if err != nil {
		return fmt.Errorf("LETHE_CONNECTOR_KEYS: %w", err)
	}
	dir, err := exportstore.NewDir(cmp.Or(os.Getenv("LETHE_EXPORT_DIR"), "exports"))
	if err != nil {
		return err
	}
	s := shop.New()
	s.Add(shop.Customer{ID: "c-1", Email: "ada@example.com", Phone: "+4915112345678", Name: "Ada",
		Orders: []shop.Order{{ID: "o-1", Total: 42.5}}})
	s.Add(shop.Customer{ID: "c-2", Email: "grace@example.com", Name: "Grace",
		Orders: []shop.Order{{ID: "o-2", Total: 12, Open: true}}})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	k := protocol.Kafka{Brokers: strings.Split(brokers, ","), TopicPrefix: os.Getenv("LETHE_TOPIC_PREFIX")}
	h := &serve.Handler{Connector: s, Name: cmp.Or(os.Getenv("LETHE_CONNECTOR_NAME"), shop.Name), Keys: keys,
		Exports: dir, Log: slog.Default()}
	slog.Info("serving", "connector", h.Name, "topic", k.Topic(protocol.CommandTopic(h.Name)))
	return serve.Kafka(ctx, k, h)
}
