package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// nonPublic are the ranges a webhook may not reach unless its instance allows private
// addresses: loopback, link-local, private, shared (CGNAT), documentation, benchmarking,
// multicast, reserved, and the IPv6 forms that map onto IPv4 (NAT64, 6to4).
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
		"2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// Public reports whether addr is a public unicast address, which a webhook may reach.
func Public(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// RefusedError is a webhook address outside the public ranges, refused because private
// addresses are not allowed (allow_private).
type RefusedError struct {
	Host string // the host as configured
	Addr netip.Addr
}

func (e *RefusedError) Error() string {
	if e.Host == "" || e.Host == e.Addr.String() {
		return fmt.Sprintf("refusing to reach %s: not a public address (set allow_private to allow loopback, link-local and private ranges)", e.Addr)
	}
	return fmt.Sprintf("refusing to reach %s: it resolves to %s, not a public address (set allow_private to allow loopback, link-local and private ranges)", e.Host, e.Addr)
}

// Guard keeps webhooks from reaching addresses inside the network Lethe runs in (SSRF):
// CheckURL refuses a configured URL whose host resolves to a non-public address, and Client's
// connections check the address actually dialled, so a name that resolves elsewhere by the
// time of the call (DNS rebinding) is refused too.
type Guard struct {
	// AllowPrivate lets webhooks reach any address (a test or demo on one machine).
	AllowPrivate bool
	// Lookup resolves a host name; nil means the system resolver.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// CheckURL refuses a webhook URL that is not http(s), has no host, or whose host resolves to
// an address Public refuses. Its errors name the host, never the path or query (which may
// hold a token).
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return errors.New("not an http(s) URL with a host")
	}
	if u.User != nil {
		return errors.New("must not carry credentials before the host; put a secret in the secret setting")
	}
	if g.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if !Public(a) {
			return &RefusedError{Host: host, Addr: a.Unmap()}
		}
	}
	return nil
}

func (g Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if g.Lookup != nil {
		return g.Lookup(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// control is the dialer's check of the address it is about to connect to.
func (g Guard) control(_, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing to reach %s: not an IP address", address)
	}
	if !Public(ap.Addr()) {
		return &RefusedError{Addr: ap.Addr().Unmap()}
	}
	return nil
}

// Client is an HTTP client whose every connection is checked against the guard at connect
// time. It uses no proxy from the environment (a proxy would dial for it, unchecked) and
// follows no redirect: a webhook answers for itself.
func (g Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	tr := &http.Transport{
		Proxy: nil, DialContext: d.DialContext, ForceAttemptHTTP2: true,
		MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
