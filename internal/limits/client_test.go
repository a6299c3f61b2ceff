package limits

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/lethe-privacy/lethe/internal/config"
)

func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name, remote, xff string
		trusted           []netip.Prefix
		want              string
	}{
		{"direct", "203.0.113.7:5000", "", nil, "203.0.113.7"},
		{"forged header, no trusted proxy", "203.0.113.7:5000", "198.51.100.1", nil, "203.0.113.7"},
		{"forged header from an untrusted peer", "203.0.113.7:5000", "198.51.100.1", lb, "203.0.113.7"},
		{"through the load balancer", "10.1.2.3:443", "198.51.100.1", lb, "198.51.100.1"},
		{"client-written hops left of the real one", "10.1.2.3:443", "1.2.3.4, 198.51.100.1, 10.9.9.9", lb, "198.51.100.1"},
		{"garbled hop", "10.1.2.3:443", "198.51.100.1, junk", lb, "10.1.2.3"},
		{"only proxies", "10.1.2.3:443", "10.4.4.4", lb, "10.4.4.4"},
		{"IPv6", "[2001:db8::1]:443", "", nil, "2001:db8::1"},
		{"IPv4-mapped", "[::ffff:203.0.113.7]:443", "", nil, "203.0.113.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientAddr(r, c.trusted); got != c.want {
			t.Errorf("%s: ClientAddr = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestClientKeyCountsAnIPv6HostByItsSlash64(t *testing.T) {
	l := New(nil, config.DefaultLimits(), "k", nil)
	if l.clientKey("2001:db8:1:2::1") != l.clientKey("2001:db8:1:2:ffff::9") {
		t.Error("two addresses of one /64 count apart")
	}
	if l.clientKey("2001:db8:1:2::1") == l.clientKey("2001:db8:1:3::1") {
		t.Error("two /64s count together")
	}
	if k := l.clientKey("203.0.113.7"); k == "" || k == "203.0.113.7" {
		t.Errorf("client key %q is not a keyed hash", k)
	}
}
