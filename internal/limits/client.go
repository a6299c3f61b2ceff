package limits

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type clientCtx struct{}

// WithClient records the client address of an HTTP request in its context, for the limits of
// the surfaces open to anyone (MyAccount).
func WithClient(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientCtx{}, addr)
}

// ClientFrom is the client address WithClient recorded, or "".
func ClientFrom(ctx context.Context) string {
	s, _ := ctx.Value(clientCtx{}).(string)
	return s
}

// ClientAddr is the address of the client that sent r. X-Forwarded-For is believed only when
// the connection comes from a trusted proxy, and then only up to the first address that is not
// one: anything left of it was written by the client and proves nothing.
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			break // a garbled hop: trust nothing beyond it
		}
		if !isTrusted(a, trusted) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads "ip", "ip:port" or "[ip]:port".
func parseAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// network is the unit a client is counted by: an IPv4 address, an IPv6 /64.
func network(addr string) string {
	a := parseAddr(addr)
	switch {
	case !a.IsValid():
		return addr
	case a.Is6():
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
