package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
)

// Config is a webhook instance's configuration (connectors[].config).
type Config struct {
	// URL is the endpoint that performs the tasks.
	URL string `yaml:"url"`
	// SecretEnv or SecretFile names where the shared secret is (at least 16 characters): it
	// signs every task and callback token.
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// Capabilities are the actions the endpoint serves (default all of Capabilities).
	Capabilities []connectors.Capability `yaml:"capabilities"`
	// CallbackURL is this instance's callback on Lethe's public URL,
	// <http.public_url>/webhooks/connectors/<name>/callback. Set, the endpoint may answer 202
	// and call it later; empty, it must answer at once.
	CallbackURL string `yaml:"callback_url"`
	// CallbackTTL is how long a callback token stays valid (default 24h).
	CallbackTTL time.Duration `yaml:"callback_ttl"`
	// AllowPrivate lets the endpoint be on a loopback, link-local or private address.
	AllowPrivate bool `yaml:"allow_private"`
	// Timeout bounds one call (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// Capabilities are the actions a webhook endpoint can serve: every subject-level one. Find and
// purge stream criteria-sized results, which a synchronous answer cannot carry.
var Capabilities = []connectors.Capability{
	connectors.CapAccess, connectors.CapErase, connectors.CapRectify, connectors.CapRestrict,
	connectors.CapBlockCheck, connectors.CapNotify,
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{Capabilities: slices.Clone(Capabilities), CallbackTTL: 24 * time.Hour, Timeout: 30 * time.Second}
}

// Validate checks the configuration without the network (Check resolves the URL).
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("url: not an http(s) URL"))
	}
	if (c.SecretEnv == "") == (c.SecretFile == "") {
		errs = append(errs, errors.New("exactly one of secret_env and secret_file is required"))
	}
	if len(c.Capabilities) == 0 {
		errs = append(errs, fmt.Errorf("capabilities: list what the endpoint serves, some of %v", Capabilities))
	}
	for _, cap := range c.Capabilities {
		if !slices.Contains(Capabilities, cap) {
			errs = append(errs, fmt.Errorf("capabilities: %q is not one of %v", cap, Capabilities))
		}
	}
	if c.CallbackURL != "" {
		if u, err := url.Parse(c.CallbackURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, errors.New("callback_url: not an http(s) URL without a query"))
		}
	}
	if c.CallbackTTL < time.Minute {
		errs = append(errs, fmt.Errorf("callback_ttl: %s is shorter than a minute", c.CallbackTTL))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: %s must be positive", c.Timeout))
	}
	return errors.Join(errs...)
}
