package localstack

import (
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KfakeOptions configures the in-process Kafka broker.
type KfakeOptions struct {
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
}

// Kfake is an in-process Kafka-protocol broker (franz-go's kfake) for machines without Java.
// It keeps everything in memory: topics and offsets are gone when it stops.
type Kfake struct {
	cluster *kfake.Cluster
	addrs   []string
	once    sync.Once
}

// StartKfake starts a single in-process broker listening on 127.0.0.1.
func StartKfake(o KfakeOptions) (*Kfake, error) {
	if o.Port != 0 {
		if err := checkPortFree(o.Port, "the in-process Kafka broker"); err != nil {
			return nil, err
		}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(o.Port))
	if err != nil {
		return nil, fmt.Errorf("starting the in-process Kafka broker: %w", err)
	}
	// Asked once: the cluster stops answering questions after Close.
	return &Kfake{cluster: c, addrs: c.ListenAddrs()}, nil
}

// Brokers are the bootstrap addresses (host:port).
func (k *Kfake) Brokers() []string { return append([]string(nil), k.addrs...) }

// Stop closes the broker and its connections. It is safe to call more than once.
func (k *Kfake) Stop() error {
	k.once.Do(k.cluster.Close)
	return nil
}
