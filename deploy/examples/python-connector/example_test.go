// The example connector is held to the same conformance suite as Lethe's Go connectors, over the
// real Kafka broker, through connectors/remote: Lethe's side speaks only the documented protocol,
// and the Python side imports nothing from Lethe.
package pythonconnector_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/connectortest"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/connectors/remote"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/schemas"
)

// EnvPython names the interpreter that has requirements.txt installed (setup.sh prints it).
const EnvPython = "LETHE_PYTHON"

var capabilities = []connectors.Capability{
	connectors.CapAccess, connectors.CapErase, connectors.CapRestrict, connectors.CapBlockCheck,
}

func TestConformance(t *testing.T) {
	env := newEnv(t)
	connectortest.Run(t, connectortest.Features{
		Capabilities:    capabilities,
		LargeResultRows: 2000,
		InvalidParams:   map[string]any{"unexpected": true},
	}, func(t *testing.T) connectortest.Fixture {
		p := env.start(t)
		return connectortest.Fixture{
			Connector: env.remote(t, p),
			Seed:      func(t *testing.T) connectors.Subject { return p.seed(t, 0, false) },
			SeedBlocked: func(t *testing.T) connectors.Subject {
				return p.seed(t, 0, true)
			},
			SeedLarge: func(t *testing.T, n int) connectors.Subject { return p.seed(t, n, false) },
			HasPersonalData: func(t *testing.T, s connectors.Subject) bool {
				rows := p.sql(t, `SELECT count(*) FROM subscribers WHERE email = ? OR phone = ?`, s.Email, s.Phone)
				return rows[0][0].(float64) > 0
			},
			Disconnect: p.lock,
		}
	})
}

// Anything that is not a version-1 command for this connector goes to lethe.dlq with a reason,
// gets no result, and does not stop the connector.
func TestMalformedCommandsAreDeadLettered(t *testing.T) {
	env := newEnv(t)
	p := env.start(t)
	c := env.remote(t, p)
	ctx := context.Background()
	topic := protocol.CommandTopic(p.name)

	type seen struct {
		dl  protocol.DeadLetter
		raw []byte
	}
	var mu sync.Mutex
	dead := make(chan seen, 16)
	var results []protocol.Result
	stopDLQ, err := remote.Tail(ctx, env.bus.Kafka(), bus.TopicDLQ, nil, func(m kafka.Message) {
		var dl protocol.DeadLetter
		if json.Unmarshal(m.Value, &dl) == nil && dl.SourceTopic == topic {
			dead <- seen{dl, m.Value}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopDLQ()
	stopResults, err := remote.Tail(ctx, env.bus.Kafka(), bus.TopicResults, nil, func(m kafka.Message) {
		var r protocol.Result
		if json.Unmarshal(m.Value, &r) == nil && r.Connector != "" {
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopResults()

	good := protocol.Command{
		Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion, ID: "c1", IdempotencyKey: "dlq:" + p.name + ":erase",
		RequestID: "dlq-" + p.name, TenantID: "t1", Connector: p.name, Action: "erase",
		TaskToken: "dGFzaw==", IssuedAt: time.Now().UTC(),
	}
	someone := &connectors.Subject{Email: "someone@example.com"}
	if err := good.Seal(env.keys, someone, nil); err != nil {
		t.Fatal(err)
	}
	other := good
	other.Connector, other.TaskToken = "another-system", "b3RoZXI="
	// Version 1 carried the subject in clear: no longer accepted.
	v1 := map[string]any{"schema": schemas.ConnectorCommand, "version": 1, "id": "c1", "idempotency_key": good.IdempotencyKey,
		"request_id": good.RequestID, "tenant_id": "t1", "connector": p.name, "action": "erase",
		"subject": someone, "task_token": "djE=", "issued_at": good.IssuedAt}
	stranger := good
	stranger.TaskToken = "c3RyYW5nZXI="
	if err := stranger.Seal(mustRing(t, "k9"), someone, nil); err != nil {
		t.Fatal(err)
	}
	lifted := good // the ciphertext of one command copied into another request's
	lifted.RequestID, lifted.TaskToken = "dlq-elsewhere", "bGlmdGVk"
	malformed := map[string][]byte{
		"not json":               []byte(`{"schema": "lethe.connector.command", `),
		"another schema":         []byte(`{"schema":"lethe.request.intake","version":1}`),
		"another connector":      mustJSON(t, other),
		"version 1, in clear":    mustJSON(t, v1),
		"sealed for another key": mustJSON(t, stranger),
		"lifted ciphertext":      mustJSON(t, lifted),
		"not utf-8":              {0xff, 0xfe, 0x00, 0x41},
	}
	want := map[string]string{} // payload → case
	for name, value := range malformed {
		want[string(value)] = name
		if err := env.bus.PublishRaw(ctx, topic, "k", value); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.After(60 * time.Second)
	for len(want) > 0 {
		select {
		case s := <-dead:
			if name, err := schemas.Validate(s.raw); err != nil || name != schemas.DLQ {
				t.Fatalf("dead letter does not match lethe.dlq: %v", err)
			}
			original := []byte(nil)
			switch {
			case s.dl.Value != nil:
				original = []byte(*s.dl.Value)
			case s.dl.ValueBase64 != nil:
				original, _ = base64.StdEncoding.DecodeString(*s.dl.ValueBase64)
			}
			name, ok := want[string(original)]
			if !ok {
				t.Fatalf("unexpected dead letter (reason %q)", s.dl.Reason)
			}
			delete(want, string(original))
			if s.dl.Reason == "" || strings.Contains(s.dl.Reason, "someone@example.com") {
				t.Errorf("%s: reason %q is empty or quotes personal data", name, s.dl.Reason)
			}
			if name == "not utf-8" && s.dl.ValueBase64 == nil {
				t.Errorf("%s: bytes that are not UTF-8 must travel as value_base64", name)
			}
			t.Logf("%s → lethe.dlq: %s", name, s.dl.Reason)
		case <-deadline:
			t.Fatalf("no dead letter for %v", want)
		}
	}

	// Still serving: a valid command after the malformed ones is answered.
	if _, err := c.(connectors.BlockChecker).BlockCheck(ctx, connectors.Task{
		Key: "after-dlq", RequestID: "after-dlq", Subject: connectors.Subject{Email: "someone@example.com"},
	}); err != nil {
		t.Fatalf("block check after malformed commands: %v", err)
	}
	// Commands are served in order, so any result for the dead-lettered ones came before.
	mu.Lock()
	defer mu.Unlock()
	for _, r := range results {
		if slices.Contains([]string{other.TaskToken, "djE=", stranger.TaskToken, lifted.TaskToken}, r.TaskToken) {
			t.Errorf("a result (%s) was published for a dead-lettered command", r.Status)
		}
	}
}

// The record of a key lives in the connector's own database: a command redelivered after a
// restart (a crash between the erasure and the commit) is answered from it, not applied again.
func TestRedeliveryAfterRestartIsAnsweredFromTheStore(t *testing.T) {
	env := newEnv(t)
	p := env.start(t)
	s := p.seed(t, 0, false)
	task := connectors.Task{Key: "restart:" + p.name + ":erase", RequestID: "restart-" + p.name, Subject: s}

	first, err := env.remote(t, p).(connectors.Eraser).Erase(context.Background(), task)
	if err != nil {
		t.Fatal(err)
	}
	if first.AlreadyApplied || first.Subjects != 1 || first.Deleted["subscribers"] != 1 || first.Anonymised["sends"] != 2 {
		t.Fatalf("first erase = %+v", first)
	}
	p.stop(t)
	// The subscriber comes back (a re-import): a second application would erase it again.
	p.sql(t, `INSERT INTO subscribers (email, phone, name, created_at) VALUES (?, ?, 'Again', '2026-01-01T00:00:00Z')`, s.Email, s.Phone)

	p2 := env.restart(t, p)
	again, err := env.remote(t, p2).(connectors.Eraser).Erase(context.Background(), task)
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadyApplied || again.Subjects != first.Subjects || again.Deleted["subscribers"] != 1 {
		t.Fatalf("redelivered erase = %+v, want the first run's counts with already_applied", again)
	}
	if n := p2.sql(t, `SELECT count(*) FROM subscribers WHERE email = ?`, s.Email)[0][0].(float64); n != 1 {
		t.Fatalf("redelivered erase applied again: %v matching subscribers left, want 1", n)
	}
}

// A command sealed with the key the connector was rotated from still opens: the connector holds
// every key of its ring, and the key id in the command says which one to use.
func TestCommandSealedBeforeRotation(t *testing.T) {
	env := newEnv(t)
	p := env.start(t)
	s := p.seed(t, 0, true)
	res, err := env.remoteWith(t, p, mustRing(t, "k1")).(connectors.BlockChecker).BlockCheck(context.Background(),
		connectors.Task{Key: "rot:" + p.name, RequestID: "rot-" + p.name, Subject: s})
	if err != nil || len(res.Blocks) != 1 {
		t.Fatalf("block check sealed with the old key = %+v, %v", res, err)
	}
}

// Restrict is served too; bad params are refused permanently and change nothing.
func TestRestrict(t *testing.T) {
	env := newEnv(t)
	p := env.start(t)
	r := env.remote(t, p).(connectors.Restricter)
	s := p.seed(t, 0, false)
	ctx := context.Background()
	flag := func() float64 {
		return p.sql(t, `SELECT restricted FROM subscribers WHERE email = ?`, s.Email)[0][0].(float64)
	}

	if _, err := r.Restrict(ctx, connectors.Task{Key: "rs:" + p.name + ":bad", Subject: s, Params: map[string]any{"lift": "yes"}}); !connectors.IsPermanent(err) {
		t.Fatalf("restrict with lift=\"yes\": want a permanent error, got %v", err)
	}
	if flag() != 0 {
		t.Fatal("refused restriction changed the subscriber")
	}
	res, err := r.Restrict(ctx, connectors.Task{Key: "rs:" + p.name + ":on", Subject: s})
	if err != nil || !res.Restricted || res.Rows != 1 || flag() != 1 {
		t.Fatalf("restrict = %+v, %v; flag %v", res, err, flag())
	}
	res, err = r.Restrict(ctx, connectors.Task{Key: "rs:" + p.name + ":off", Subject: s, Params: map[string]any{"lift": true}})
	if err != nil || res.Restricted || res.Rows != 1 || flag() != 0 {
		t.Fatalf("lift = %+v, %v; flag %v", res, err, flag())
	}
}

// --- harness --------------------------------------------------------------------------------

type env struct {
	python  string
	brokers []string
	bus     *bus.Bus
	// keys seal the commands: the connector holds the same key (and the one before a rotation).
	keys    *envelope.Ring
	keysEnv string
}

// testKey is a fixed key per id, so the connector and Lethe's side can hold the same one.
func testKey(t *testing.T, id string) envelope.Key {
	t.Helper()
	k, err := envelope.NewKey(id, []byte(strings.Repeat(id[len(id)-1:], envelope.KeySize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRing(t *testing.T, ids ...string) *envelope.Ring {
	t.Helper()
	var keys []envelope.Key
	for _, id := range ids {
		keys = append(keys, testKey(t, id))
	}
	r, err := envelope.NewRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newEnv(t *testing.T) *env {
	t.Helper()
	python := os.Getenv(EnvPython)
	if python == "" {
		testenv.Unavailable(t, EnvPython+" is not set: run deploy/examples/python-connector/setup.sh and set it to the python it prints (deploy/test.sh does both)")
	}
	brokers := testenv.KafkaBrokers(t)
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{Brokers: brokers, ClientID: "lethe-python-example-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.EnsureTopics(ctx, bus.TopicResults, bus.TopicDLQ); err != nil {
		t.Fatal(err)
	}
	// The connector was rotated from k1 to k2: it opens both; Lethe seals with k2.
	var entries []string
	for _, id := range []string{"k2", "k1"} {
		entries = append(entries, id+"="+base64.StdEncoding.EncodeToString([]byte(strings.Repeat(id[1:], envelope.KeySize))))
	}
	return &env{python: python, brokers: brokers, bus: b, keys: mustRing(t, "k2"), keysEnv: strings.Join(entries, ",")}
}

// proc is one running connector process with its own name (so its own commands topic and
// consumer group), database and export directory.
type proc struct {
	env      *env
	name     string
	db       string
	exports  string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	log      *logLines
	personal []string // every identifier seeded, to check the log never shows one
}

func (e *env) start(t *testing.T) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{env: e, name: "newsletter-" + testenv.Suffix(), db: filepath.Join(dir, "newsletter.db"), exports: filepath.Join(dir, "exports")}
	if err := e.bus.EnsureTopics(context.Background(), protocol.CommandTopic(p.name)); err != nil {
		t.Fatal(err)
	}
	e.run(t, p)
	return p
}

// restart serves the same connector name and database from a new process.
func (e *env) restart(t *testing.T, old *proc) *proc {
	t.Helper()
	p := &proc{env: e, name: old.name, db: old.db, exports: old.exports, personal: old.personal}
	e.run(t, p)
	return p
}

func (e *env) run(t *testing.T, p *proc) {
	t.Helper()
	p.log = &logLines{t: t, ready: make(chan struct{})}
	p.cmd = exec.Command(e.python, "connector.py", "--db", p.db, "--busy-timeout", "0.5",
		"serve", "--brokers", strings.Join(e.brokers, ","), "--name", p.name, "--progress-every", "1")
	p.cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "LETHE_CONNECTOR_KEYS="+e.keysEnv)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the example connector: %v", err)
	}
	p.exited = make(chan struct{})
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop(t) })

	// Serving starts once the consumer group has given it the partition.
	select {
	case <-p.log.ready:
	case <-p.exited:
		t.Fatalf("the example connector exited at start: %v", p.waitErr)
	case <-time.After(60 * time.Second):
		t.Fatal("the example connector did not join its consumer group within 60s")
	}
}

// stop sends SIGTERM and expects a clean exit; it also checks the log held no personal data.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return // already stopped (and checked)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("the example connector did not stop cleanly: %v", p.waitErr)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Error("the example connector ignored SIGTERM for 30s")
	}
	logged := p.log.String()
	for _, v := range p.personal {
		if strings.Contains(logged, v) {
			t.Errorf("the connector's log shows personal data")
		}
	}
}

func (e *env) remote(t *testing.T, p *proc) connectors.Connector {
	t.Helper()
	return e.remoteWith(t, p, e.keys)
}

func (e *env) remoteWith(t *testing.T, p *proc, keys *envelope.Ring) connectors.Connector {
	t.Helper()
	// A bus of its own: a producer caches topic metadata, and this connector's commands topic
	// was created after the shared bus last looked.
	b, err := bus.Open(context.Background(), bus.Config{Brokers: e.brokers, ClientID: "lethe-python-example-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c, err := remote.New(context.Background(), remote.Config{
		Name: p.name, Capabilities: capabilities, ExportDir: p.exports, Timeout: 30 * time.Second, Keys: keys,
		Kafka: b.Kafka(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seed plants a subscriber with two sends, plus large more sends, and a queued one if blocked.
func (p *proc) seed(t *testing.T, large int, blocked bool) connectors.Subject {
	t.Helper()
	id := testenv.Suffix()
	s := connectors.Subject{Email: "sub-" + id + "@example.com", Phone: fmt.Sprintf("+4915%09d", rand.IntN(1e9))}
	name := "Subscriber " + id
	p.personal = append(p.personal, s.Email, s.Phone, name)
	p.sql(t, `INSERT INTO subscribers (email, name, phone, created_at) VALUES (?, ?, ?, '2026-01-05T10:00:00Z')`, s.Email, name, s.Phone)
	p.sql(t, `INSERT INTO sends (subscriber_id, campaign, sent_at)
		SELECT id, c, '2026-02-01T08:00:00Z' FROM subscribers, (SELECT 'spring' AS c UNION ALL SELECT 'summer') WHERE email = ?`, s.Email)
	if large > 0 {
		p.sql(t, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO sends (subscriber_id, campaign, sent_at)
			SELECT s.id, 'weekly-' || n.i, '2026-03-01T08:00:00Z' FROM n, subscribers s WHERE s.email = ?`, large, s.Email)
	}
	if blocked {
		p.sql(t, `INSERT INTO sends (subscriber_id, campaign, status) SELECT id, 'autumn', 'queued' FROM subscribers WHERE email = ?`, s.Email)
	}
	return s
}

// sqlScript runs one statement in its own transaction and prints the rows as JSON: the test
// looks into the newsletter's database directly, never through the connector.
const sqlScript = `
import json, sqlite3, sys
req = json.load(sys.stdin)
db = sqlite3.connect(req["db"], timeout=30, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
rows = db.execute(req["sql"], req["params"]).fetchall()
db.execute("COMMIT")
json.dump(rows, sys.stdout)
`

func (p *proc) sql(t *testing.T, query string, params ...any) [][]any {
	t.Helper()
	cmd := exec.Command(p.env.python, "-c", sqlScript)
	cmd.Stdin = bytes.NewReader(mustJSON(t, map[string]any{"db": p.db, "sql": query, "params": params}))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("querying the newsletter database: %v\n%s", err, stderr.String())
	}
	var rows [][]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// lockScript holds an exclusive lock on the database until its stdin closes.
const lockScript = `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
`

// lock makes the newsletter unavailable for the rest of the test: every action then meets a
// busy database, which the connector must report as retryable.
func (p *proc) lock(t *testing.T) {
	t.Helper()
	cmd := exec.Command(p.env.python, "-c", lockScript, p.db)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("locking the newsletter database: %q, %v", line, err)
	}
}

// logLines passes the connector's log to the test log line by line, keeps it for inspection,
// and closes ready when the consumer has its partitions.
type logLines struct {
	t     *testing.T
	mu    sync.Mutex
	buf   bytes.Buffer
	part  []byte
	ready chan struct{}
	once  sync.Once
}

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	l.part = append(l.part, b...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		line := string(l.part[:i])
		l.part = l.part[i+1:]
		l.t.Log("connector:", line)
		if strings.Contains(line, "partitions assigned") {
			l.once.Do(func() { close(l.ready) })
		}
	}
	return len(b), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var _ io.Writer = (*logLines)(nil)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
