package runner_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/runner"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/schemas"

	_ "github.com/lethe-privacy/lethe/connectors/database"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is the database connector on the demo data, served by a runner whose results are
// published to a topic of this test's own.
type fixture struct {
	stack *teststack.Stack
	r     *runner.Runner
	// old is the key the runner's ring was rotated from: it still opens, no longer seals.
	old *envelope.Ring
}

func key(t *testing.T, id string) envelope.Key {
	k, err := envelope.NewKey(id, []byte(strings.Repeat(id[len(id)-1:], envelope.KeySize)))
	require.NoError(t, err)
	return k
}

func newFixture(t *testing.T) *fixture {
	s := teststack.New(t, teststack.Options{Name: "runner"})
	c, err := connectors.Open("database", demo.ConnectorConfig)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ring, err := envelope.NewRing(key(t, "k2"), key(t, "k1"))
	require.NoError(t, err)
	old, err := envelope.NewRing(key(t, "k1"))
	require.NoError(t, err)
	return &fixture{stack: s, old: old, r: &runner.Runner{
		Connector: c, Keys: ring, Bus: s.Deps.Bus, Store: s.Deps.Store, Exports: s.Deps.Exports,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}
}

// command is a command about the demo customer, sealed with the runner's current key.
func (f *fixture) command(t *testing.T, action, key string) protocol.Command {
	return f.commandFor(t, action, key, &connectors.Subject{Email: demo.ClearCustomerEmail}, f.r.Keys)
}

func (f *fixture) commandFor(t *testing.T, action, key string, s *connectors.Subject, keys *envelope.Ring) protocol.Command {
	t.Helper()
	cmd := protocol.Command{
		Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion, ID: key + ":1", IdempotencyKey: key,
		RequestID: "R-RUN", TenantID: "salon", Connector: "database", Action: action,
		TaskToken: "dG9rZW4=", IssuedAt: time.Now().UTC(),
		Export: &protocol.ExportLocation{Location: f.stack.Deps.Exports.URI("salon/R-RUN")},
	}
	require.NoError(t, cmd.Seal(keys, s, nil))
	return cmd
}

func (f *fixture) handle(t *testing.T, cmd protocol.Command) error {
	raw, err := json.Marshal(cmd)
	require.NoError(t, err)
	return f.r.Handle(context.Background(), bus.Message{Topic: protocol.CommandTopic("database"), Value: raw, Schema: schemas.ConnectorCommand})
}

// results reads the results the runner published, in order, until it has n.
func (f *fixture) results(t *testing.T, n int) []protocol.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []protocol.Result
	err := f.stack.Deps.Bus.Consume(ctx, bus.ConsumerOptions{Group: "probe", Topic: bus.TopicResults}, func(_ context.Context, m bus.Message) error {
		var r protocol.Result
		require.NoError(t, json.Unmarshal(m.Value, &r))
		if r.Status != protocol.StatusProgress {
			out = append(out, r)
		}
		if len(out) == n {
			cancel()
		}
		return nil
	})
	require.NoError(t, err)
	require.Len(t, out, n)
	return out
}

// A command delivered again (the runner crashed after the erasure, before its commit) is
// answered from the stored result: the connector does not erase a second time.
func TestRedeliveredCommandIsAnsweredFromTheStore(t *testing.T) {
	f := newFixture(t)
	// Matched by customer number, which erasure keeps, so a second erasure would find the
	// row again and show in the change log.
	cmd := f.commandFor(t, "erase", "R-RUN:database:erase", &connectors.Subject{CustomerID: demo.ClearCustomerNumber}, f.r.Keys)
	require.NoError(t, f.handle(t, cmd))
	cmd.ID = "R-RUN:database:erase:2" // the retry is a new message with the same key
	require.NoError(t, f.handle(t, cmd))

	res := f.results(t, 2)
	for _, r := range res {
		assert.Equal(t, protocol.StatusSucceeded, r.Status)
		assert.Equal(t, "R-RUN:database:erase", r.IdempotencyKey)
	}
	assert.JSONEq(t, string(res[0].Output.Result), string(res[1].Output.Result), "the same answer both times")
	var stored, ledger int
	require.NoError(t, f.stack.Deps.Store.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM connector_tasks WHERE idempotency_key = 'R-RUN:database:erase'`).Scan(&stored))
	require.NoError(t, f.stack.Demo.QueryRow(context.Background(),
		`SELECT count(*) FROM lethe_applied_tasks WHERE task_key = 'R-RUN:database:erase'`).Scan(&ledger))
	assert.Equal(t, 1, stored)
	assert.Equal(t, 1, ledger)
	id, err := demo.CustomerID(context.Background(), f.stack.Demo, demo.ClearCustomerNumber)
	require.NoError(t, err)
	changes, err := demo.Changes(context.Background(), f.stack.Demo, id)
	require.NoError(t, err)
	assert.Equal(t, 1, changes, "the connector applied the erasure once")
}

// Access results travel as files in the export store, referenced with their checksum, never
// inside the Kafka message.
func TestAccessWritesTablesToTheExportStore(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.handle(t, f.command(t, "access", "R-RUN:database:access")))
	res := f.results(t, 1)[0]
	require.Equal(t, protocol.StatusSucceeded, res.Status)
	require.NotEmpty(t, res.Output.Exports)
	raw, _ := json.Marshal(res)
	assert.NotContains(t, string(raw), demo.ClearCustomerEmail, "no personal data inside the message")
	for _, ref := range res.Output.Exports {
		require.NoError(t, exportstore.Verify(context.Background(), f.stack.Deps.Exports, exportstore.Object{URI: ref.URI, SHA256: ref.SHA256, Bytes: ref.Bytes}))
		r, err := f.stack.Deps.Exports.Open(context.Background(), ref.URI)
		require.NoError(t, err)
		lines := 0
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines++
		}
		r.Close()
		assert.Equal(t, ref.Rows+1, int64(lines), "%s: a header line and one line per row", ref.Table)
		if ref.Table == "customers" {
			assert.True(t, strings.HasSuffix(ref.URI, "/database/customers.jsonl"))
		}
	}
}

// A command for another connector on this one's topic can never succeed here.
func TestCommandForAnotherConnectorIsInvalid(t *testing.T) {
	f := newFixture(t)
	cmd := f.command(t, "erase", "R-RUN:mailchimp:erase")
	cmd.Connector = "mailchimp"
	err := f.handle(t, cmd)
	require.Error(t, err)
	assert.True(t, bus.IsInvalid(err), "dead-lettered, not retried: %v", err)
}

// Commands carry the subject sealed. One sealed before a key rotation still opens with the
// retired key; one the runner holds no key for, or whose ciphertext was lifted into another
// command, never opens: dead-lettered (holding only ciphertext), nothing done.
func TestSealedCommands(t *testing.T) {
	f := newFixture(t)
	raw, err := json.Marshal(f.command(t, "block_check", "R-RUN:database:block_check"))
	require.NoError(t, err)
	assert.NotContains(t, string(raw), demo.ClearCustomerEmail, "the subject travels sealed")
	assert.Contains(t, string(raw), `"key_id":"k2"`, "sealed with the current key")

	before := f.commandFor(t, "block_check", "R-RUN:database:block_check:old", &connectors.Subject{Email: demo.ClearCustomerEmail}, f.old)
	require.NoError(t, f.handle(t, before))
	assert.Equal(t, protocol.StatusSucceeded, f.results(t, 1)[0].Status, "sealed before the rotation, still served")

	unknown, err := envelope.NewRing(key(t, "k9"))
	require.NoError(t, err)
	foreign := f.commandFor(t, "erase", "R-RUN:database:erase", &connectors.Subject{Email: demo.ClearCustomerEmail}, unknown)
	err = f.handle(t, foreign)
	assert.True(t, bus.IsInvalid(err), "a key the runner does not hold: %v", err)
	assert.ErrorIs(t, err, envelope.ErrUnknownKey)

	lifted := f.command(t, "erase", "R-RUN:database:erase")
	lifted.RequestID = "R-OTHER" // the same ciphertext in a command of another request
	err = f.handle(t, lifted)
	assert.True(t, bus.IsInvalid(err), "a ciphertext bound to another command: %v", err)
	assert.NotContains(t, err.Error(), demo.ClearCustomerEmail)

	id, err := demo.CustomerID(context.Background(), f.stack.Demo, demo.ClearCustomerNumber)
	require.NoError(t, err)
	changes, err := demo.Changes(context.Background(), f.stack.Demo, id)
	require.NoError(t, err)
	assert.Zero(t, changes, "no refused command reached the connector")
}

// Find, purge and every other role the connector implements are served through the
// capability table: a find streams its subjects to the export store as a table file.
func TestFindAndPurgeAreServed(t *testing.T) {
	f := newFixture(t)
	find := f.command(t, "find", "R-RUN:database:find")
	require.NoError(t, find.Seal(f.r.Keys, &connectors.Subject{Email: demo.ClearCustomerEmail},
		json.RawMessage(`{"finder":"customers_created_between","from":"2000-01-01T00:00:00Z","to":"2100-01-01T00:00:00Z"}`)))
	require.NoError(t, f.handle(t, find))
	purge := f.command(t, "purge", "R-RUN:database:purge")
	require.NoError(t, purge.Seal(f.r.Keys, nil, json.RawMessage(`{"rule":"cancelled_bookings"}`)))
	require.NoError(t, f.handle(t, purge))

	res := f.results(t, 2)
	require.Equal(t, protocol.StatusSucceeded, res[0].Status, "find: %+v", res[0].Error)
	var found connectors.FindResult
	require.NoError(t, json.Unmarshal(res[0].Output.Result, &found))
	require.Positive(t, found.Subjects)
	require.Len(t, res[0].Output.Exports, 1)
	ref := res[0].Output.Exports[0]
	assert.Equal(t, "subjects", ref.Table)
	assert.Equal(t, found.Subjects, ref.Rows)
	require.NoError(t, exportstore.Verify(context.Background(), f.stack.Deps.Exports, exportstore.Object{URI: ref.URI, SHA256: ref.SHA256, Bytes: ref.Bytes}))
	raw, _ := json.Marshal(res[0])
	assert.NotContains(t, string(raw), demo.ClearCustomerEmail, "found subjects travel only in the export")

	require.Equal(t, protocol.StatusSucceeded, res[1].Status, "purge: %+v", res[1].Error)
	var purged connectors.PurgeResult
	require.NoError(t, json.Unmarshal(res[1].Output.Result, &purged))
	assert.Contains(t, purged.Rows, "cancelled_bookings")
}
