package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Rate is a rate limit: at most N events in any Per, written "N/period" ("5/1h", "600/1m").
// "off" (the zero value) turns the limit off.
type Rate struct {
	N   int
	Per time.Duration
}

// Off reports whether the limit is turned off.
func (r Rate) Off() bool { return r.N <= 0 || r.Per <= 0 }

// ParseRate reads "N/period" or "off".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || count < 1 {
		return Rate{}, fmt.Errorf("%q must be a count and a period such as 5/1h, or off", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d < time.Second {
		return Rate{}, fmt.Errorf("%q: the period must be a duration of at least 1s, such as 10m or 1h", s)
	}
	return Rate{N: count, Per: d}, nil
}

func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	per := r.Per.String() // 1h0m0s, 10m0s, 1m30s
	if strings.HasSuffix(per, "m0s") {
		per = strings.TrimSuffix(per, "0s")
	}
	if strings.HasSuffix(per, "h0m") {
		per = strings.TrimSuffix(per, "0m")
	}
	return strconv.Itoa(r.N) + "/" + per
}

// MarshalYAML writes a Rate as UnmarshalYAML reads it.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// UnmarshalYAML reads a Rate from "N/period" or "off".
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseRate(s)
	if err != nil {
		return fmt.Errorf("line %d: limits: %w", n.Line, err)
	}
	*r = v
	return nil
}

// Scopes are the limits of one action: per tenant, per subject (a keyed hash of the address)
// and per client address.
type Scopes struct {
	Tenant  Rate `yaml:"tenant"`
	Subject Rate `yaml:"subject"`
	Client  Rate `yaml:"client"`
}

// Limits are the rate limits every surface shares (internal/limits), counted in PostgreSQL so
// that every Lethe process counts together.
type Limits struct {
	// Submit counts new requests. Verify counts code checks: its subject limit bounds the code
	// guesses per subject across all of the subject's requests. Resend counts new codes asked
	// for.
	Submit Scopes `yaml:"submit"`
	Verify Scopes `yaml:"verify"`
	Resend Scopes `yaml:"resend"`
	// MaxFormBytes caps MyAccount form bodies (default 16 KiB).
	MaxFormBytes int64 `yaml:"max_form_bytes"`
}

// DefaultLimits let a busy tenant's day through while one subject cannot flood an inbox and a
// code of one in a million takes years of guessing to reach even odds.
func DefaultLimits() Limits {
	return Limits{
		Submit:       Scopes{Tenant: Rate{600, time.Minute}, Subject: Rate{5, time.Hour}, Client: Rate{30, time.Hour}},
		Verify:       Scopes{Tenant: Rate{600, time.Minute}, Subject: Rate{10, time.Hour}, Client: Rate{60, time.Hour}},
		Resend:       Scopes{Tenant: Rate{300, time.Minute}, Subject: Rate{5, time.Hour}, Client: Rate{30, time.Hour}},
		MaxFormBytes: 16 << 10,
	}
}

func (l Limits) validate() error {
	if l.MaxFormBytes < 1024 {
		return fmt.Errorf("limits.max_form_bytes: must be at least 1024")
	}
	return nil
}

// ParseProxies reads the trusted proxy list: addresses or CIDR prefixes.
func ParseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither an IP address nor a CIDR prefix", Setting("http.trusted_proxies"), s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
