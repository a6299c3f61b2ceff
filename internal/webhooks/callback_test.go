package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/connectors/webhook"
	"github.com/lethe-privacy/lethe/connectors/webhook/webhooktest"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/runner"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/webhooks"
	"github.com/lethe-privacy/lethe/schemas"
)

const shopSecret = "shop-webhook-secret-0123456789"

// callbackEnv is a webhook connector instance "shop" served by a real runner over Kafka and
// PostgreSQL, its endpoint the reference shop and its callbacks Lethe's own handler.
type callbackEnv struct {
	*env
	shop     *webhooktest.Shop
	runner   *runner.Runner
	callback string // the instance's callback URL
	results  chan protocol.Result
}

func newCallbackEnv(t *testing.T) *callbackEnv {
	e := &callbackEnv{env: newEnv(t, "http://127.0.0.1:9/unused", ""), shop: webhooktest.New([]byte(shopSecret)), results: make(chan protocol.Result, 100)}
	ctx := context.Background()
	require.NoError(t, e.bus.EnsureTopics(ctx, protocol.CommandTopic("shop"), bus.TopicResults))
	endpoint := httptest.NewServer(e.shop)
	t.Cleanup(endpoint.Close)
	mux := http.NewServeMux()
	lethe := httptest.NewServer(mux)
	t.Cleanup(lethe.Close)
	e.callback = lethe.URL + "/webhooks/connectors/shop/callback"

	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(shopSecret), 0o600))
	cfg := webhook.NewConfig()
	cfg.URL, cfg.SecretFile, cfg.CallbackURL, cfg.AllowPrivate = endpoint.URL, secretFile, e.callback, true
	require.NoError(t, cfg.Validate())
	conn, err := webhook.New(cfg)
	require.NoError(t, err)
	k, err := envelope.NewKey("k1", []byte(strings.Repeat("s", envelope.KeySize)))
	require.NoError(t, err)
	ring, err := envelope.NewRing(k)
	require.NoError(t, err)
	exports, err := exportstore.NewDir(t.TempDir())
	require.NoError(t, err)
	e.runner = &runner.Runner{Connector: conn, Name: "shop", Keys: ring, Bus: e.bus, Store: e.store, Exports: exports,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Progress: 50 * time.Millisecond}
	(&webhooks.Callbacks{Runners: map[string]*runner.Runner{"shop": e.runner}, Store: e.store, Log: slog.Default()}).Mount(mux)

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- e.runner.Run(rctx) }()
	go func() {
		done <- e.bus.Consume(rctx, bus.ConsumerOptions{Group: "probe", Topic: bus.TopicResults}, func(_ context.Context, m bus.Message) error {
			var r protocol.Result
			require.NoError(t, json.Unmarshal(m.Value, &r))
			e.results <- r
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return e
}

// send publishes a sealed command for the shop, as DispatchCommand does.
func (e *callbackEnv) send(t *testing.T, action, key, email string) {
	t.Helper()
	cmd := protocol.Command{Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion, ID: key + ":1", IdempotencyKey: key,
		RequestID: "R-SHOP", TenantID: "salon", Connector: "shop", Action: action, TaskToken: "dG9rZW4=", IssuedAt: time.Now().UTC()}
	require.NoError(t, cmd.Seal(e.runner.Keys, &connectors.Subject{Email: email}, nil))
	require.NoError(t, e.bus.Publish(context.Background(), protocol.CommandTopic("shop"), cmd.RequestID, cmd))
}

// next is the next result of the given status (progress results are heartbeats).
func (e *callbackEnv) next(t *testing.T, status string) protocol.Result {
	t.Helper()
	for {
		select {
		case r := <-e.results:
			if r.Status == status {
				return r
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("no %s result", status)
		}
	}
}

// An endpoint that answers 202 and calls back later completes the step: the callback's answer
// becomes the same result an answer at once gives, remembered, so a redelivered command and a
// repeated callback change nothing; meanwhile the held command's activity gets heartbeats.
func TestCallbackCompletesTheConnectorStep(t *testing.T) {
	e := newCallbackEnv(t)
	e.shop.Seed("hanna@example.com", "", "Hanna", false)
	e.shop.Seed("jonas@example.com", "", "Jonas", false)

	// At once: the shop answers in its 200.
	e.send(t, "erase", "R-SHOP:shop:erase:jonas", "jonas@example.com")
	direct := e.next(t, protocol.StatusSucceeded)

	// Later: 202, the command is held, heartbeats flow, and nothing completes until the callback.
	e.shop.Async, e.shop.Hold = true, true
	e.send(t, "erase", "R-SHOP:shop:erase", "hanna@example.com")
	e.next(t, protocol.StatusProgress)
	e.next(t, protocol.StatusProgress) // a heartbeat of the held command
	require.Equal(t, 1, e.shop.Pending())
	held, err := e.store.HeldCommands().Get(context.Background(), "shop", "R-SHOP:shop:erase")
	require.NoError(t, err)
	require.NotEmpty(t, held)

	statuses, err := e.shop.Deliver(context.Background())
	require.NoError(t, err)
	require.Equal(t, []int{http.StatusOK}, statuses)
	later := e.next(t, protocol.StatusSucceeded)
	require.Equal(t, "R-SHOP:shop:erase", later.IdempotencyKey)
	require.Equal(t, "dG9rZW4=", later.TaskToken, "the result answers the held command's task token")
	require.JSONEq(t, string(direct.Output.Result), string(later.Output.Result), "the same result as an answer at once")
	require.False(t, e.shop.Has("hanna@example.com"))
	_, err = e.store.HeldCommands().Get(context.Background(), "shop", "R-SHOP:shop:erase")
	require.ErrorIs(t, err, store.ErrNotFound, "the held command is released")

	// The same callback again is acknowledged and completes nothing more.
	tasks := e.shop.Tasks()
	last := tasks[len(tasks)-1]
	ans := webhook.Answer{Schema: schemas.WebhookAnswer, Version: 1, Status: webhook.StatusSucceeded, Result: json.RawMessage(`{"subjects":1}`)}
	st, err := webhooktest.Callback(context.Background(), last.Callback.URL, ans)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)

	// A second erase (the command redelivered under its key) is a no-op success from memory,
	// without reaching the endpoint.
	e.shop.Async = false
	e.send(t, "erase", "R-SHOP:shop:erase", "hanna@example.com")
	again := e.next(t, protocol.StatusSucceeded)
	require.JSONEq(t, string(later.Output.Result), string(again.Output.Result))
	require.Len(t, e.shop.Tasks(), len(tasks), "the endpoint was not called again")
	// Under a new key the endpoint finds nobody left: a success that erased nothing.
	e.send(t, "erase", "R-SHOP2:shop:erase", "hanna@example.com")
	gone := e.next(t, protocol.StatusSucceeded)
	require.JSONEq(t, `{"already_applied":false,"subjects":0}`, string(gone.Output.Result))
}

// A callback with a wrong token or a malformed answer is refused and completes nothing.
func TestBadCallbacksAreRefused(t *testing.T) {
	e := newCallbackEnv(t)
	e.shop.Seed("hanna@example.com", "", "Hanna", false)
	e.shop.Async, e.shop.Hold = true, true
	e.send(t, "erase", "R-SHOP:shop:erase", "hanna@example.com")
	e.next(t, protocol.StatusProgress)
	url := e.shop.Tasks()[0].Callback.URL
	ok := webhook.Answer{Schema: schemas.WebhookAnswer, Version: 1, Status: webhook.StatusSucceeded, Result: json.RawMessage(`{"subjects":1}`)}

	for name, c := range map[string]struct {
		url    string
		body   string
		status int
	}{
		"no token":      {e.callback, mustJSON(t, ok), http.StatusUnauthorized},
		"changed token": {url[:len(url)-3] + "AAA", mustJSON(t, ok), http.StatusUnauthorized},
		"other name":    {strings.Replace(url, "/shop/", "/nosuch/", 1), mustJSON(t, ok), http.StatusNotFound},
		"not an answer": {url, `{"status":"done"}`, http.StatusBadRequest},
		"not JSON":      {url, `<html>`, http.StatusBadRequest},
	} {
		res, err := http.Post(c.url, "application/json", strings.NewReader(c.body))
		require.NoError(t, err, name)
		res.Body.Close()
		require.Equal(t, c.status, res.StatusCode, name)
	}
	_, err := e.store.HeldCommands().Get(context.Background(), "shop", "R-SHOP:shop:erase")
	require.NoError(t, err, "the command still waits")
	select {
	case r := <-e.results:
		require.Equal(t, protocol.StatusProgress, r.Status, "no result was published")
	default:
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
