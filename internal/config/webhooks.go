package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors/webhook"
)

// Webhook is one of a tenant's subscriptions: the events on lethe.events it wants, POSTed to
// URL as JSON signed with Secret (Lethe-Signature, see connectors/webhook/README.md).
type Webhook struct {
	// Name names the subscription in deliveries, the audit trail and the CLI.
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Events are event types (request.status_changed), a prefix ending in .* (breach.*) or *;
	// default every event.
	Events []string `yaml:"events,omitempty"`
	// Secret keys the signature: at least 16 characters, from env or file.
	Secret Secret `yaml:"secret"`
}

// Wants reports whether the subscription takes events of type typ.
func (w Webhook) Wants(typ string) bool {
	if len(w.Events) == 0 {
		return true
	}
	for _, e := range w.Events {
		if e == "*" || e == typ || (strings.HasSuffix(e, ".*") && strings.HasPrefix(typ, strings.TrimSuffix(e, "*"))) {
			return true
		}
	}
	return false
}

// Webhooks are the deployment's delivery settings for every tenant's subscriptions.
type Webhooks struct {
	// AllowPrivate lets webhooks reach loopback, link-local and private addresses (lethe dev,
	// a receiver on the same network); off, such URLs are refused at start and at connect time.
	AllowPrivate bool `yaml:"allow_private"`
	// MaxAttempts is how many times one delivery is tried before it is dead-lettered (default 8).
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the wait after the first failed attempt; it doubles each time (default 30s)
	// up to MaxBackoff (default 1h).
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// Poll is how often the delivery loop looks for retries that are due (default 1s).
	Poll time.Duration `yaml:"poll"`
}

// DefaultWebhooks are the delivery settings when none are given.
func DefaultWebhooks() Webhooks {
	return Webhooks{MaxAttempts: 8, Backoff: 30 * time.Second, MaxBackoff: time.Hour, Timeout: 10 * time.Second, Poll: time.Second}
}

// AnyWebhooks says whether some tenant subscribes to events.
func (c *Config) AnyWebhooks() bool {
	for _, t := range c.Tenants {
		if len(t.Webhooks) > 0 {
			return true
		}
	}
	return false
}

func (w Webhooks) validate() error {
	if w.MaxAttempts < 1 || w.MaxAttempts > 100 {
		return fmt.Errorf("%s: %d must be between 1 and 100", Setting("webhooks.max_attempts"), w.MaxAttempts)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"backoff", w.Backoff}, {"max_backoff", w.MaxBackoff}, {"timeout", w.Timeout}, {"poll", w.Poll}} {
		if d.d <= 0 {
			return fmt.Errorf("%s: %s must be positive, a duration such as 30s", Setting("webhooks."+d.name), d.d)
		}
	}
	if w.MaxBackoff < w.Backoff {
		return fmt.Errorf("%s: %s is shorter than webhooks.backoff %s", Setting("webhooks.max_backoff"), w.MaxBackoff, w.Backoff)
	}
	return nil
}

var webhookName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// validateWebhooks checks a tenant's subscriptions without the network: a literal address is
// checked here, a host name when the delivery process starts (webhooks.New).
func (t Tenant) validateWebhooks(allowPrivate bool) error {
	seen := map[string]bool{}
	for i, w := range t.Webhooks {
		if !webhookName.MatchString(w.Name) {
			return fmt.Errorf("tenants[%s].webhooks[%d].name: %q must be lower-case letters, digits, - or _", t.ID, i, w.Name)
		}
		if seen[w.Name] {
			return fmt.Errorf("tenants[%s].webhooks[%d].name: %q appears twice", t.ID, i, w.Name)
		}
		seen[w.Name] = true
		at := "tenants[" + t.ID + "].webhooks[" + w.Name + "]"
		if err := checkWebhookURL(w.URL, allowPrivate); err != nil {
			return fmt.Errorf("%s.url: %v", at, err)
		}
		for _, e := range w.Events {
			if e != "*" && !eventPattern.MatchString(e) {
				return fmt.Errorf("%s.events: %q is not an event type such as request.status_changed, a prefix such as breach.*, or *", at, e)
			}
		}
		if w.Secret.value != "" && len(w.Secret.value) < 16 { // resolved: an unset one fails to resolve
			return fmt.Errorf("%s.secret: must be at least 16 characters (e.g. openssl rand -hex 32)", at)
		}
	}
	return nil
}

var eventPattern = regexp.MustCompile(`^[a-z][a-z_]*(\.[a-z][a-z_]*)*(\.\*)?$`)

// checkWebhookURL refuses what can be refused without the network: not http(s), credentials
// in the URL, a literal non-public address or localhost.
func checkWebhookURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("not an http(s) URL with a host")
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials; the secret setting signs deliveries")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil && !webhook.Public(a) {
		return &webhook.RefusedError{Addr: a.Unmap()}
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("refusing to reach %s: loopback (set webhooks.allow_private to allow it)", host)
	}
	return nil
}

func (t *Tenant) resolveWebhooks(lookup func(string) (string, bool)) error {
	for i := range t.Webhooks {
		w := &t.Webhooks[i]
		v, err := resolve(fmt.Sprintf("tenants[%s].webhooks[%s].secret", t.ID, w.Name), w.Secret, lookup, true)
		if err != nil {
			return err
		}
		w.Secret.value = v
	}
	return nil
}
