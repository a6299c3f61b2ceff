package sms

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
)

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// Config is the SMS connector's configuration (YAML): one Twilio account, and the sender of
// each tenant the instance serves.
type Config struct {
	// AccountSID is the Twilio account (AC followed by 32 hex digits).
	AccountSID string `yaml:"account_sid"`
	// AuthTokenEnv or AuthTokenFile names where the account's auth token is; it is a secret,
	// so never written in the configuration itself. It also verifies Twilio's webhooks.
	AuthTokenEnv  string `yaml:"auth_token_env"`
	AuthTokenFile string `yaml:"auth_token_file"`
	// BaseURL is the API's address (default https://api.twilio.com); lethe dev and the tests
	// point it at the local stand-in.
	BaseURL string `yaml:"base_url"`
	// Senders is each tenant's sender, by tenant ID.
	Senders map[string]Sender `yaml:"senders"`
	// PageSize is how many messages one list call asks for (default 100, at most 1000).
	PageSize int `yaml:"page_size"`
	// Timeout bounds one API call (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// Sender is who a tenant's texts come from: a phone number of the account, or a Messaging
// Service (exactly one of them).
type Sender struct {
	From                string `yaml:"from"`
	MessagingServiceSID string `yaml:"messaging_service_sid"`
}

// NewConfig returns a configuration with the defaults set.
func NewConfig() *Config {
	return &Config{BaseURL: DefaultBaseURL, PageSize: 100, Timeout: 10 * time.Second}
}

var (
	accountSID = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
)

// Validate checks the configuration without contacting Twilio.
func (c *Config) Validate() error {
	var errs *multierror.Error
	add := func(format string, a ...any) { errs = multierror.Append(errs, fmt.Errorf(format, a...)) }
	if !accountSID.MatchString(c.AccountSID) {
		add("account_sid must be AC followed by 32 hex digits (the Account SID in Twilio's console)")
	}
	if (c.AuthTokenEnv == "") == (c.AuthTokenFile == "") {
		add("exactly one of auth_token_env and auth_token_file is required")
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimRight(u.Path, "/") != "" {
		add("base_url %q must be an http(s) address without a path, such as %s", c.BaseURL, DefaultBaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if len(c.Senders) == 0 {
		add("senders: set the sender of each tenant, e.g. senders: {salon: {from: \"+15005550006\"}}")
	}
	for _, tenant := range c.tenants() {
		s := c.Senders[tenant]
		switch {
		case (s.From == "") == (s.MessagingServiceSID == ""):
			add("senders.%s: set exactly one of from and messaging_service_sid", tenant)
		case s.From != "" && !e164.MatchString(s.From):
			add("senders.%s.from must be a phone number in E.164 form (+ and up to 15 digits)", tenant)
		case s.MessagingServiceSID != "" && !serviceSID.MatchString(s.MessagingServiceSID):
			add("senders.%s.messaging_service_sid must be MG followed by 32 hex digits", tenant)
		}
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		add("page_size must be between 1 and 1000 (Twilio's limit)")
	}
	if c.Timeout <= 0 {
		add("timeout must be positive")
	}
	return errs.ErrorOrNil()
}

// tenants lists the configured tenants, sorted.
func (c *Config) tenants() []string {
	out := make([]string, 0, len(c.Senders))
	for t := range c.Senders {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// AuthToken reads the auth token from where the configuration says it is.
func (c *Config) AuthToken() (string, error) {
	var v string
	switch {
	case c.AuthTokenEnv != "":
		v = os.Getenv(c.AuthTokenEnv)
		if v == "" {
			return "", fmt.Errorf("auth_token_env: the environment variable %s is not set", c.AuthTokenEnv)
		}
	default:
		b, err := os.ReadFile(c.AuthTokenFile)
		if err != nil {
			return "", fmt.Errorf("auth_token_file: reading %s: %w", c.AuthTokenFile, errors.Unwrap(err))
		}
		v = strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("auth_token_file: %s is empty", c.AuthTokenFile)
		}
	}
	return v, nil
}

// tokenSetting names where the auth token is configured, for error messages.
func (c *Config) tokenSetting() string {
	if c.AuthTokenEnv != "" {
		return "auth_token_env (" + c.AuthTokenEnv + ")"
	}
	return "auth_token_file (" + c.AuthTokenFile + ")"
}

// TenantOf returns the tenant whose sender is the number or Messaging Service an inbound
// message was sent to.
func (c *Config) TenantOf(to, messagingServiceSID string) (string, bool) {
	for _, t := range c.tenants() {
		s := c.Senders[t]
		if (s.From != "" && s.From == to) || (s.MessagingServiceSID != "" && s.MessagingServiceSID == messagingServiceSID) {
			return t, true
		}
	}
	return "", false
}
