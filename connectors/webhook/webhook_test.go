package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/connectortest"
	"github.com/lethe-privacy/lethe/connectors/webhook"
	"github.com/lethe-privacy/lethe/connectors/webhook/webhooktest"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

const secret = "shop-webhook-secret-0123456789"

// open builds a connector on url whose secret is in a file, as an instance's config names it.
func open(t *testing.T, url string, edit func(*webhook.Config)) *webhook.Connector {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := webhook.NewConfig()
	cfg.URL, cfg.SecretFile, cfg.AllowPrivate, cfg.Timeout = url, f, true, 5*time.Second
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	var n atomic.Int64
	connectortest.Run(t, connectortest.Features{
		Capabilities:   webhook.Capabilities,
		RectifyChanges: map[string]any{"name": "Hanna B."},
	}, func(t *testing.T) connectortest.Fixture {
		shop := webhooktest.New([]byte(secret))
		srv := httptest.NewServer(shop)
		t.Cleanup(srv.Close)
		seed := func(blocked bool) connectors.Subject {
			email := fmt.Sprintf("customer-%d@example.com", n.Add(1))
			shop.Seed(email, "+4915100000001", "Hanna", blocked)
			return connectors.Subject{Email: email}
		}
		return connectortest.Fixture{
			Connector:       open(t, srv.URL, nil),
			Seed:            func(*testing.T) connectors.Subject { return seed(false) },
			SeedBlocked:     func(*testing.T) connectors.Subject { return seed(true) },
			HasPersonalData: func(_ *testing.T, s connectors.Subject) bool { return shop.Has(s.Email) },
			Disconnect:      func(*testing.T) { srv.Close() },
		}
	})
}

// The endpoint's statuses decide retries: 429 and 503 after Retry-After, 5xx again, other 4xx
// never; a 202 without a callback URL is a configuration mistake, permanent.
func TestStatusesAreClassified(t *testing.T) {
	var status atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(`{"schema":"lethe.webhook.answer","version":1,"status":"failed","error":{"message":"bad credentials"}}`))
	}))
	defer srv.Close()
	c := open(t, srv.URL, nil)
	task := connectors.Task{Key: "R-1:shop:erase", RequestID: "R-1", TenantID: "salon", Subject: connectors.Subject{Email: "hanna@example.com"}}
	for _, tc := range []struct {
		status    int
		permanent bool
		delay     time.Duration
		want      string
	}{
		{429, false, 7 * time.Second, "answered 429"},
		{503, false, 7 * time.Second, "answered 503"},
		{500, false, 0, "answered 500"},
		{401, true, 0, "answered 401: the endpoint failed: bad credentials"},
		{202, true, 0, "answered 202, but the instance has no callback_url"},
	} {
		status.Store(int64(tc.status))
		_, err := c.Erase(context.Background(), task)
		if err == nil || connectors.IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "answered 401: the endpoint failed: ")) {
			t.Errorf("%d: Erase = %v, want permanent %v containing %q", tc.status, err, tc.permanent, tc.want)
		}
		if d, _ := connectors.RetryDelay(err); d != tc.delay {
			t.Errorf("%d: retry delay %s, want %s", tc.status, d, tc.delay)
		}
	}
}

// A second erase under the same key is a no-op that succeeds; so is an erase of someone
// already gone under a new key.
func TestSecondEraseIsANoOpSuccess(t *testing.T) {
	shop := webhooktest.New([]byte(secret))
	srv := httptest.NewServer(shop)
	defer srv.Close()
	shop.Seed("hanna@example.com", "", "Hanna", false)
	c := open(t, srv.URL, nil)
	task := connectors.Task{Key: "R-1:shop:erase", RequestID: "R-1", TenantID: "salon", Subject: connectors.Subject{Email: "hanna@example.com"}}
	first, err := c.Erase(context.Background(), task)
	if err != nil || first.AlreadyApplied || first.Subjects != 1 || shop.Has("hanna@example.com") {
		t.Fatalf("first erase = %+v, %v", first, err)
	}
	second, err := c.Erase(context.Background(), task)
	if err != nil || !second.AlreadyApplied || second.Subjects != 1 {
		t.Fatalf("second erase = %+v, %v; want already applied, one subject", second, err)
	}
	task.Key = "R-2:shop:erase"
	if third, err := c.Erase(context.Background(), task); err != nil || third.Subjects != 0 {
		t.Fatalf("erase of someone gone = %+v, %v", third, err)
	}
}

// The task is signed so that OpenSSL, an implementation independent of Lethe's, computes the
// same HMAC over t.body; the callback it carries verifies for its key only.
func TestTaskIsSignedAndCarriesACallback(t *testing.T) {
	var mu sync.Mutex
	var header, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, r.ContentLength)
		_, _ = r.Body.Read(b)
		mu.Lock()
		header, body = r.Header.Get(webhook.SignatureHeader), string(b)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	const callback = "https://privacy.example.com/webhooks/connectors/shop/callback"
	c := open(t, srv.URL, func(cfg *webhook.Config) { cfg.CallbackURL = callback })
	if !c.Defers() {
		t.Fatal("with a callback URL the connector defers")
	}
	_, err := c.Erase(context.Background(), connectors.Task{Key: "R-1:shop:erase", RequestID: "R-1", TenantID: "salon", Subject: connectors.Subject{Email: "hanna@example.com"}})
	if !connectors.IsDeferred(err) {
		t.Fatalf("Erase answered 202 = %v, want a deferred error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	ts, sig, ok := strings.Cut(strings.TrimPrefix(header, "t="), ",v1=")
	if !ok {
		t.Fatalf("Lethe-Signature %q", header)
	}
	if got := testenv.OpenSSLHMAC(t, secret, ts+"."+body); got != sig {
		t.Fatalf("openssl computes %s, the header says %s", got, sig)
	}
	_, query, _ := strings.Cut(body, callback+"?token=")
	token, _, _ := strings.Cut(query, `"`)
	if key, err := c.VerifyCallback(token); err != nil || key != "R-1:shop:erase" {
		t.Fatalf("VerifyCallback = %q, %v", key, err)
	}
	if _, err := c.VerifyCallback(token[:len(token)-2] + "xx"); !errors.Is(err, webhook.ErrToken) {
		t.Fatalf("a changed token verifies: %v", err)
	}
	other := webhook.CallbackToken([]byte(secret), callback+"-other", "R-1:shop:erase", time.Now().Add(time.Hour))
	if _, err := c.VerifyCallback(other); !errors.Is(err, webhook.ErrToken) {
		t.Fatalf("a token for another callback URL verifies: %v", err)
	}
	expired := webhook.CallbackToken([]byte(secret), callback, "R-1:shop:erase", time.Now().Add(-time.Second))
	if _, err := c.VerifyCallback(expired); !errors.Is(err, webhook.ErrToken) {
		t.Fatalf("an expired token verifies: %v", err)
	}
}

// Without allow_private the endpoint's loopback address is refused by Check and, for a call,
// at connect time, permanently and before the endpoint sees anything.
func TestPrivateEndpointIsRefused(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := open(t, srv.URL, func(cfg *webhook.Config) { cfg.AllowPrivate = false })
	var refused *webhook.RefusedError
	if err := c.Check(context.Background()); !errors.As(err, &refused) {
		t.Fatalf("Check = %v, want a refusal", err)
	}
	_, err := c.Erase(context.Background(), connectors.Task{Key: "k", Subject: connectors.Subject{Email: "hanna@example.com"}})
	if !errors.As(err, &refused) || !connectors.IsPermanent(err) || hits.Load() != 0 {
		t.Fatalf("Erase = %v (%d hits), want a permanent refusal before any request", err, hits.Load())
	}
}
