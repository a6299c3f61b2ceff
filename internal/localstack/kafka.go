package localstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// KafkaOptions configures a local Apache Kafka broker.
type KafkaOptions struct {
	// JarsDir holds the broker's jars (deploy/test.sh fetches them with Maven from
	// deploy/kafka/pom.xml).
	JarsDir string
	// DataDir holds the cluster id, the configuration and the logs. It is formatted on first
	// use and reused afterwards.
	DataDir string
	// Port of the client listener on 127.0.0.1; 0 picks a free one.
	Port int
	// Log receives the broker's output; nil discards it.
	Log io.Writer
	// SASL, when set, adds a SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-512) on a free port
	// beside the plaintext one, with this one user, for testing authenticated clients.
	SASL *KafkaUser
	// TLS, with SASL, adds a SASL_SSL listener too, serving this certificate.
	TLS *KafkaTLS
}

// KafkaUser is a user of the SASL listeners.
type KafkaUser struct{ Name, Password string }

// KafkaTLS is the broker's certificate chain and its PKCS#8 key, PEM-encoded.
type KafkaTLS struct{ CertPEM, KeyPEM []byte }

// Kafka is a running single-node Apache Kafka cluster in KRaft mode (broker and controller in
// one JVM).
type Kafka struct {
	addr              string
	saslAddr, tlsAddr string
	proc              *child
}

const javaInstallHint = "install a Java 17 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"

// StartKafka starts the broker and returns once it answers metadata requests.
func StartKafka(ctx context.Context, o KafkaOptions) (*Kafka, error) {
	java, err := lookTool("java", javaInstallHint)
	if err != nil {
		return nil, err
	}
	if o.DataDir == "" {
		return nil, errors.New("starting Kafka: no data directory given")
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("starting Kafka: %w", err)
	}
	jars, err := kafkaJars(o.JarsDir)
	if err != nil {
		return nil, err
	}
	port, err := portOrFree(o.Port)
	if err != nil {
		return nil, err
	}
	if err := checkPortFree(port, "Kafka"); err != nil {
		return nil, err
	}
	// The controller listener is internal to the single node; any free port will do, and it may
	// change between runs because the quorum is this one node.
	cport, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating Kafka data directory: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var saslAddr, tlsAddr string
	var format []string
	body := kafkaProperties(dataDir, port, cport)
	if o.TLS != nil && o.SASL == nil {
		return nil, errors.New("starting Kafka: a TLS listener needs a SASL user")
	}
	if o.SASL != nil {
		if saslAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		body = withListener(body, "SASL_PLAINTEXT", saslAddr, *o.SASL, nil)
		// SCRAM credentials of a KRaft cluster are written when its storage is formatted.
		format = []string{"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", o.SASL.Name, o.SASL.Password)}
	}
	if o.TLS != nil {
		if tlsAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		body = withListener(body, "SASL_SSL", tlsAddr, *o.SASL, o.TLS)
	}
	props := filepath.Join(dataDir, "server.properties")
	if err := os.WriteFile(props, []byte(body), 0o644); err != nil {
		return nil, fmt.Errorf("writing Kafka configuration: %w", err)
	}
	log4j := filepath.Join(dataDir, "log4j.properties")
	if err := os.WriteFile(log4j, []byte(kafkaLog4j), 0o644); err != nil {
		return nil, fmt.Errorf("writing Kafka logging configuration: %w", err)
	}
	jvm := []string{
		"-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
		"-Dlog4j.configuration=file:" + log4j, "-cp", jars,
	}
	if err := formatKafkaStorage(ctx, java, jvm, dataDir, props, o.Log, format...); err != nil {
		return nil, err
	}

	cmd := exec.Command(java, append(jvm, "kafka.Kafka", props)...)
	cmd.Dir = dataDir
	proc, err := startChild("Kafka", cmd, childOptions{stopWait: time.Minute, log: o.Log})
	if err != nil {
		return nil, err
	}
	err = proc.waitReady(ctx, 3*time.Minute, func() error { return kafkaAnswers(ctx, addr) })
	if err != nil {
		_ = proc.stop()
		return nil, fmt.Errorf("starting Kafka on %s: %w", addr, err)
	}
	return &Kafka{addr: addr, saslAddr: saslAddr, tlsAddr: tlsAddr, proc: proc}, nil
}

// Brokers are the bootstrap addresses (host:port).
func (k *Kafka) Brokers() []string { return []string{k.addr} }

// SASLBrokers are the addresses of the SASL_PLAINTEXT listener (none without KafkaOptions.SASL).
func (k *Kafka) SASLBrokers() []string { return addrs(k.saslAddr) }

// TLSBrokers are the addresses of the SASL_SSL listener (none without KafkaOptions.TLS).
func (k *Kafka) TLSBrokers() []string { return addrs(k.tlsAddr) }

func addrs(a string) []string {
	if a == "" {
		return nil
	}
	return []string{a}
}

func freeAddr() (string, error) {
	p, err := FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// Done is closed when the broker process has exited, after Stop or on its own.
func (k *Kafka) Done() <-chan struct{} { return k.proc.done }

// Stop shuts the broker down (a controlled shutdown that flushes its logs) and waits.
func (k *Kafka) Stop() error { return k.proc.stop() }

// kafkaJars is the classpath of every jar in dir.
func kafkaJars(dir string) (string, error) {
	const hint = "fetch them with: mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=DIR (deploy/test.sh does this)"
	if dir == "" {
		return "", errors.New("starting Kafka: no jars directory given; " + hint)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	broker, _ := filepath.Glob(filepath.Join(dir, "kafka_2.13-*.jar"))
	if len(broker) == 0 {
		return "", fmt.Errorf("no Kafka broker jar (kafka_2.13-*.jar) in %s: %s", dir, hint)
	}
	return filepath.Join(dir, "*"), nil
}

func kafkaProperties(dataDir string, port, cport int) string {
	lines := []string{
		"# Written by Lethe at each start: a single-node local cluster.",
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", cport),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, cport),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", port),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + filepath.Join(dataDir, "logs"),
		"num.partitions=1",
		"default.replication.factor=1",
		"min.insync.replicas=1",
		"offsets.topic.replication.factor=1",
		// One partition for the internal topics: a single node gains nothing from 50, and
		// creating them slows the first consumer group down by seconds.
		"offsets.topic.num.partitions=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=1",
		"group.initial.rebalance.delay.ms=0",
		// Lethe creates its topics on purpose (lethe migrate --topics); a typo must not
		// silently create a new one.
		"auto.create.topics.enable=false",
		"delete.topic.enable=true",
	}
	return strings.Join(lines, "\n") + "\n"
}

// withListener adds a SASL listener (protocol SASL_PLAINTEXT or SASL_SSL) at addr to the
// properties, for user u, serving cert over TLS.
func withListener(props, protocol, addr string, u KafkaUser, cert *KafkaTLS) string {
	lines := strings.Split(strings.TrimSuffix(props, "\n"), "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "listeners="):
			lines[i] = strings.Replace(l, ",CONTROLLER:", ","+protocol+"://"+addr+",CONTROLLER:", 1)
		case strings.HasPrefix(l, "advertised.listeners="):
			lines[i] = l + "," + protocol + "://" + addr
		case strings.HasPrefix(l, "listener.security.protocol.map="):
			lines[i] = l + "," + protocol + ":" + protocol
		}
	}
	name := "listener.name." + strings.ToLower(protocol) + "."
	lines = append(lines,
		name+"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
		fmt.Sprintf(`%splain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_%s="%s";`, name, u.Name, u.Password),
		name+"scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
	)
	if cert != nil {
		// A properties value holds the PEM's line breaks as \n escapes.
		esc := func(b []byte) string { return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", `\n`) }
		lines = append(lines,
			name+"ssl.keystore.type=PEM",
			name+"ssl.keystore.certificate.chain="+esc(cert.CertPEM),
			name+"ssl.keystore.key="+esc(cert.KeyPEM),
		)
	}
	return strings.Join(lines, "\n") + "\n"
}

const kafkaLog4j = `log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
`

// formatKafkaStorage formats the log directory once, with a cluster id kept in DataDir.
func formatKafkaStorage(ctx context.Context, java string, jvm []string, dataDir, props string, log io.Writer, extra ...string) error {
	if _, err := os.Stat(filepath.Join(dataDir, "logs", "meta.properties")); err == nil {
		return nil
	}
	idFile := filepath.Join(dataDir, "cluster.id")
	id, err := os.ReadFile(idFile)
	if errors.Is(err, fs.ErrNotExist) {
		id = []byte(newKafkaClusterID())
		err = os.WriteFile(idFile, append(id, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("keeping the Kafka cluster id in %s: %w", idFile, err)
	}
	args := append(append(jvm, "kafka.tools.StorageTool", "format",
		"-t", strings.TrimSpace(string(id)), "-c", props, "--ignore-formatted"), extra...)
	cmd := exec.Command(java, args...)
	cmd.Dir = dataDir
	proc, err := startChild("Kafka storage format", cmd, childOptions{log: log})
	if err != nil {
		return err
	}
	select {
	case <-proc.done:
	case <-ctx.Done():
		_ = proc.stop()
		return fmt.Errorf("formatting Kafka storage: %w", ctx.Err())
	}
	if proc.waitErr != nil {
		return fmt.Errorf("formatting Kafka storage in %s: %v; its last output:\n%s", dataDir, proc.waitErr, proc.tail.String())
	}
	return nil
}

// newKafkaClusterID makes an id the way Kafka's Uuid.randomUuid does: 16 random bytes in
// unpadded URL-safe base64, never starting with '-' (it would read as a command-line flag).
func newKafkaClusterID() string {
	for {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		if s := base64.RawURLEncoding.EncodeToString(b); s[0] != '-' {
			return s
		}
	}
}

// kafkaAnswers reports whether the broker is up and registered: a metadata request lists it.
func kafkaAnswers(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := (&kafka.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	brokers, err := conn.Brokers()
	if err != nil {
		return err
	}
	if len(brokers) == 0 {
		return errors.New("metadata lists no brokers yet")
	}
	return nil
}
