package app_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/sasl/plain"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/localstack"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

const signingKey = "app-test-signing-key-0123456789abcdef"

func load(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	env["DATABASE_URL"], env["LETHE_SIGNING_KEY"] = "postgres://lethe@127.0.0.1/lethe", signingKey
	if env["LETHE_KAFKA_BROKERS"] == "" {
		env["LETHE_KAFKA_BROKERS"] = "k:9092"
	}
	cfg, err := config.LoadFrom("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The Temporal client gets TLS and the API key (Temporal Cloud) from the configuration.
func TestTemporalOptionsCarryTLSAndAPIKey(t *testing.T) {
	cfg := load(t, map[string]string{"LETHE_TEMPORAL_HOSTPORT": "ns.acct.tmprl.cloud:7233", "LETHE_TEMPORAL_API_KEY": "temporal-api-key"})
	o := app.TemporalOptions(cfg.Temporal, slog.Default())
	if o.ConnectionOptions.TLS == nil || o.Credentials == nil {
		t.Fatalf("options = %+v, want TLS and API-key credentials", o.ConnectionOptions)
	}
	o = app.TemporalOptions(load(t, map[string]string{}).Temporal, slog.Default())
	if o.ConnectionOptions.TLS != nil || o.Credentials != nil {
		t.Fatal("TLS or credentials set without being configured")
	}
}

// brokerCert is a certificate for the broker, and a file a client can name as its CA.
func brokerCert(t *testing.T) (localstack.KafkaTLS, string) {
	t.Helper()
	certPEM, keyPEM := testenv.Cert(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return localstack.KafkaTLS{CertPEM: certPEM, KeyPEM: keyPEM}, ca
}

// Lethe's producer, consumers and admin requests reach a real broker configured the way an
// operator configures Lethe: SCRAM-SHA-512 on a SASL_PLAINTEXT listener, and PLAIN over TLS on a
// SASL_SSL listener. A wrong password, or a broker certificate not trusted, fails at start.
func TestKafkaOverSASLAndTLS(t *testing.T) {
	jars := os.Getenv("LETHE_KAFKA_JARS")
	if _, err := exec.LookPath("java"); jars == "" || err != nil {
		testenv.Unavailable(t, "needs LETHE_KAFKA_JARS and java to start a broker with SASL and TLS listeners: run the suite through deploy/test.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	user := localstack.KafkaUser{Name: "lethe", Password: "sasl-test-password"}
	cert, ca := brokerCert(t)
	k, err := localstack.StartKafka(ctx, localstack.KafkaOptions{JarsDir: jars, DataDir: t.TempDir(), SASL: &user, TLS: &cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Stop() })

	busConfig := func(env map[string]string) bus.Config {
		env["LETHE_KAFKA_SASL_USERNAME"], env["LETHE_KAFKA_SASL_PASSWORD"] = user.Name, user.Password
		c, err := app.BusConfig(load(t, env).Kafka, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	scram := busConfig(map[string]string{"LETHE_KAFKA_BROKERS": strings.Join(k.SASLBrokers(), ","), "LETHE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"})
	overTLS := busConfig(map[string]string{"LETHE_KAFKA_BROKERS": strings.Join(k.TLSBrokers(), ","), "LETHE_KAFKA_SASL_MECHANISM": "PLAIN",
		"LETHE_KAFKA_TLS": "true", "LETHE_KAFKA_TLS_CA_FILE": ca})
	if scram.TLS != nil || overTLS.TLS == nil || overTLS.TLS.RootCAs == nil {
		t.Fatal("TLS configured where it was not asked for, or missing where it was")
	}
	for name, c := range map[string]bus.Config{"SCRAM-SHA-512": scram, "PLAIN": overTLS} {
		t.Run(name, func(t *testing.T) {
			c.TopicPrefix = strings.ToLower(name) + "."
			b, err := bus.Open(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if d := b.Dialer(); d.SASLMechanism == nil || d.SASLMechanism.Name() != name || b.Transport().SASL == nil || d.TLS != c.TLS || b.Transport().TLS != c.TLS {
				t.Fatalf("dialer or transport lacks the %s mechanism or the TLS configuration", name)
			}
			if err := b.EnsureTopics(ctx, bus.TopicEvents, bus.TopicDLQ); err != nil {
				t.Fatal(err)
			}
			ev := bus.Event{Schema: "lethe.event", Version: 1, ID: "e-" + name, Type: "request.status_changed", TenantID: "t1",
				RequestID: "r1", Status: "received", OccurredAt: time.Now().UTC()}
			if err := b.Publish(ctx, bus.TopicEvents, "k", ev); err != nil {
				t.Fatal(err)
			}
			cctx, stop := context.WithTimeout(ctx, time.Minute)
			defer stop()
			var got string
			err = b.Consume(cctx, bus.ConsumerOptions{Group: "g", Topic: bus.TopicEvents}, func(_ context.Context, m bus.Message) error {
				got = m.Schema
				stop()
				return nil
			})
			if err != nil || got != "lethe.event" {
				t.Fatalf("consumed %q, %v; want the event", got, err)
			}
		})
	}

	wrong := scram
	wrong.SASL = plain.Mechanism{Username: user.Name, Password: "not-the-password"}
	wrong.Brokers = k.SASLBrokers()
	if _, err := bus.Open(ctx, wrong); err == nil {
		t.Fatal("a wrong password opened the bus")
	}
	untrusted := overTLS
	untrusted.TLS = &tls.Config{MinVersion: tls.VersionTLS12} // the system's roots do not know the broker
	if _, err := bus.Open(ctx, untrusted); err == nil {
		t.Fatal("an untrusted broker certificate was accepted")
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

// Lethe dials Temporal over TLS with an API key from its configuration: here through a TLS
// front (as Temporal Cloud has) to the dev server, whose certificate Lethe trusts via ca_file.
func TestTemporalOverTLS(t *testing.T) {
	testenv.Temporal(t) // the dev server behind the front
	backend := testenv.TemporalHostPort(t)
	certPEM, keyPEM := testenv.Cert(t)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	handshakes := make(chan struct{}, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				handshakes <- struct{}{}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c) }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := load(t, map[string]string{"LETHE_TEMPORAL_HOSTPORT": l.Addr().String(), "LETHE_TEMPORAL_TLS_CA_FILE": ca,
		"LETHE_TEMPORAL_TLS": "true", "LETHE_TEMPORAL_API_KEY": "temporal-api-key"})
	c, err := app.DialTemporal(context.Background(), cfg.Temporal, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-handshakes:
	default:
		t.Fatal("the client reached Temporal without a TLS handshake")
	}

	// Without the CA the front's certificate is refused.
	cfg.Temporal.TLS = load(t, map[string]string{"LETHE_TEMPORAL_TLS": "true"}).Temporal.TLS
	if c, err := app.DialTemporal(context.Background(), cfg.Temporal, slog.Default()); err == nil {
		c.Close()
		t.Fatal("an untrusted Temporal certificate was accepted")
	}
}
