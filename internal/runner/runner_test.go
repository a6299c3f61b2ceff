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
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/exports"
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
}

func newFixture(t *testing.T) *fixture {
	s := teststack.New(t, teststack.Options{Name: "runner"})
	c, err := connectors.Open("database", demo.ConnectorConfig)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &fixture{stack: s, r: &runner.Runner{
		Connector: c, Bus: s.Deps.Bus, Store: s.Deps.Store, Exports: s.Deps.Exports,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}
}

func (f *fixture) command(action, key string) bus.Command {
	return bus.Command{
		Schema: schemas.ConnectorCommand, Version: schemas.Version, ID: key + ":1", IdempotencyKey: key,
		RequestID: "R-RUN", TenantID: "salon", Connector: "database", Action: action,
		Subject: &bus.Subject{Email: demo.ClearCustomerEmail}, TaskToken: "dG9rZW4=", IssuedAt: time.Now().UTC(),
		Export: &bus.ExportLocation{Location: f.stack.Deps.Exports.URI("salon/R-RUN")},
	}
}

func (f *fixture) handle(t *testing.T, cmd bus.Command) error {
	raw, err := json.Marshal(cmd)
	require.NoError(t, err)
	return f.r.Handle(context.Background(), bus.Message{Topic: bus.CommandTopic("database"), Value: raw, Schema: schemas.ConnectorCommand})
}

// results reads the results the runner published, in order, until it has n.
func (f *fixture) results(t *testing.T, n int) []bus.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []bus.Result
	err := f.stack.Deps.Bus.Consume(ctx, bus.ConsumerOptions{Group: "probe", Topic: bus.TopicResults}, func(_ context.Context, m bus.Message) error {
		var r bus.Result
		require.NoError(t, json.Unmarshal(m.Value, &r))
		if r.Status != bus.StatusProgress {
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
	cmd := f.command("erase", "R-RUN:database:erase")
	// Matched by customer number, which erasure keeps, so a second erasure would find the
	// row again and show in the change log.
	cmd.Subject = &bus.Subject{CustomerID: demo.ClearCustomerNumber}
	require.NoError(t, f.handle(t, cmd))
	cmd.ID = "R-RUN:database:erase:2" // the retry is a new message with the same key
	require.NoError(t, f.handle(t, cmd))

	res := f.results(t, 2)
	for _, r := range res {
		assert.Equal(t, bus.StatusSucceeded, r.Status)
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
	require.NoError(t, f.handle(t, f.command("access", "R-RUN:database:access")))
	res := f.results(t, 1)[0]
	require.Equal(t, bus.StatusSucceeded, res.Status)
	require.NotEmpty(t, res.Output.Exports)
	raw, _ := json.Marshal(res)
	assert.NotContains(t, string(raw), demo.ClearCustomerEmail, "no personal data inside the message")
	for _, ref := range res.Output.Exports {
		require.NoError(t, exports.Verify(context.Background(), f.stack.Deps.Exports, exports.Object{URI: ref.URI, SHA256: ref.SHA256, Bytes: ref.Bytes}))
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
	cmd := f.command("erase", "R-RUN:mailchimp:erase")
	cmd.Connector = "mailchimp"
	err := f.handle(t, cmd)
	require.Error(t, err)
	assert.True(t, bus.IsInvalid(err), "dead-lettered, not retried: %v", err)
}
