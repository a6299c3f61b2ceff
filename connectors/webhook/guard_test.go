package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors/webhook"
)

func TestPublicRefusesInternalRanges(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "172.31.255.255": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "224.0.0.1": false, "255.255.255.255": false,
		"::1": false, "::": false, "fe80::1": false, "fc00::1": false, "fd12:3456::1": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false, "64:ff9b::a00:1": false, "2002:7f00:1::": false,
		"93.184.216.34": true, "8.8.8.8": true, "172.32.0.1": true, "2606:4700:4700::1111": true,
	} {
		if got := webhook.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

// A configured URL is refused when its host resolves to an internal address, naming the host.
func TestCheckURLRefusesNamesThatResolveInside(t *testing.T) {
	g := webhook.Guard{Lookup: func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.5")}, nil
	}}
	err := g.CheckURL(context.Background(), "https://hooks.example.com/x?token=secret")
	var refused *webhook.RefusedError
	if !errors.As(err, &refused) || refused.Addr.String() != "10.0.0.5" {
		t.Fatalf("CheckURL = %v, want a refusal of 10.0.0.5", err)
	}
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "hooks.example.com") {
		t.Fatalf("the refusal names the host and not the query: %q", err)
	}
	for _, raw := range []string{"http://127.0.0.1/x", "http://[::1]:8080/x", "http://169.254.169.254/latest/meta-data"} {
		if err := (webhook.Guard{}).CheckURL(context.Background(), raw); !errors.As(err, &refused) {
			t.Errorf("CheckURL(%s) = %v, want a refusal", raw, err)
		}
	}
	for _, raw := range []string{"ftp://example.com/", "https:///x", "https://user:pw@example.com/"} {
		if err := (webhook.Guard{}).CheckURL(context.Background(), raw); err == nil {
			t.Errorf("CheckURL(%s) accepted", raw)
		}
	}
	if err := (webhook.Guard{AllowPrivate: true}).CheckURL(context.Background(), "http://127.0.0.1/x"); err != nil {
		t.Fatalf("with private addresses allowed: %v", err)
	}
}

// A name that passed the check but resolves inside the network when Lethe connects (DNS
// rebinding) is refused by the dialer, before any byte reaches the address.
func TestClientRefusesInternalAddressAtConnectTime(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	// At check time the name answers with a public address...
	g := webhook.Guard{Lookup: func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	}}
	if err := g.CheckURL(context.Background(), url); err != nil {
		t.Fatalf("CheckURL: %v", err)
	}
	// ...at connect time the system resolver gives loopback.
	_, err := g.Client(5 * time.Second).Get(url)
	var refused *webhook.RefusedError
	if !errors.As(err, &refused) || !refused.Addr.IsLoopback() {
		t.Fatalf("Get = %v, want a refusal of the loopback address", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the server was reached %d times", hits.Load())
	}

	// Allowed, the same call goes through.
	res, err := webhook.Guard{AllowPrivate: true}.Client(5 * time.Second).Get(url)
	if err != nil {
		t.Fatalf("with private addresses allowed: %v", err)
	}
	res.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("the server was reached %d times, want 1", hits.Load())
	}
}

// Redirects are not followed: a public endpoint cannot send Lethe inside the network.
func TestClientFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int64
	inside := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer inside.Close()
	front := httptest.NewServer(http.RedirectHandler(inside.URL, http.StatusFound))
	defer front.Close()
	res, err := webhook.Guard{AllowPrivate: true}.Client(5 * time.Second).Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || hits.Load() != 0 {
		t.Fatalf("status %d, %d hits behind the redirect; want 302 and none", res.StatusCode, hits.Load())
	}
}

func TestSignAndVerify(t *testing.T) {
	key, body, at := []byte("0123456789abcdef"), []byte(`{"a":1}`), time.Unix(1767225600, 0)
	h := webhook.Sign(key, at, body)
	if err := webhook.Verify(key, h, body, at.Add(time.Minute), webhook.Tolerance); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for name, c := range map[string]struct {
		header string
		body   []byte
		now    time.Time
	}{
		"changed body": {h, []byte(`{"a":2}`), at},
		"stale":        {h, body, at.Add(6 * time.Minute)},
		"no v1":        {"t=1767225600", body, at},
		"garbage":      {"nonsense", body, at},
	} {
		if err := webhook.Verify(key, c.header, c.body, c.now, webhook.Tolerance); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrSignature", name, err)
		}
	}
	// While a secret rotates, one matching v1 of several is enough.
	rotated := webhook.Sign([]byte("old-secret-0123456"), at, body) + "," + strings.SplitN(h, ",", 2)[1]
	if err := webhook.Verify(key, rotated, body, at, webhook.Tolerance); err != nil {
		t.Fatalf("rotated: %v", err)
	}
}
