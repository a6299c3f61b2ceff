package mailchimp

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Config is the Mailchimp connector's configuration (YAML).
type Config struct {
	// APIKeyEnv or APIKeyFile names where the Marketing API key is (never the key itself).
	// The key ends in its datacenter (…-us6), which gives the API's address.
	APIKeyEnv  string `yaml:"api_key_env"`
	APIKeyFile string `yaml:"api_key_file"`
	// Audiences are the list IDs the subject is looked up in, each on its own.
	Audiences []string `yaml:"audiences"`
	// BaseURL replaces https://<dc>.api.mailchimp.com/3.0, for a local stand-in.
	BaseURL string `yaml:"base_url"`
	// Timeout bounds one API call (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MergeFields maps the fields a rectification names to the audience's merge tags
	// (default first_name: FNAME, last_name: LNAME, phone: PHONE). The field "email" always
	// changes the member's address.
	MergeFields map[string]string `yaml:"merge_fields"`
}

// NewConfig returns a Config with defaults.
func NewConfig() *Config {
	return &Config{Timeout: 10 * time.Second, MergeFields: map[string]string{"first_name": "FNAME", "last_name": "LNAME", "phone": "PHONE"}}
}

var mergeTag = regexp.MustCompile(`^[A-Z0-9_]{1,10}$`)

// Validate checks the configuration without contacting Mailchimp.
func (c *Config) Validate() error {
	var errs *multierror.Error
	add := func(format string, a ...any) { errs = multierror.Append(errs, fmt.Errorf(format, a...)) }
	if (c.APIKeyEnv == "") == (c.APIKeyFile == "") {
		add("exactly one of api_key_env and api_key_file is required")
	}
	if len(c.Audiences) == 0 {
		add("audiences: at least one audience (list) ID is required")
	}
	for i, a := range c.Audiences {
		if strings.TrimSpace(a) == "" || strings.ContainsAny(a, "/?# ") {
			add("audiences[%d]: %q is not a list ID", i, a)
		} else if slices.Index(c.Audiences, a) != i {
			add("audiences[%d]: %q listed twice", i, a)
		}
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("base_url: %q is not an http(s) URL", c.BaseURL)
		}
	}
	if c.Timeout <= 0 {
		add("timeout must be positive")
	}
	for field, tag := range c.MergeFields {
		if field == "email" {
			add("merge_fields: email is the member's address, not a merge field")
		}
		if !mergeTag.MatchString(tag) {
			add("merge_fields.%s: %q is not a merge tag (upper case, at most 10 characters)", field, tag)
		}
	}
	return errs.ErrorOrNil()
}

// datacenter is the suffix of an API key (…-us6 gives us6).
var datacenter = regexp.MustCompile(`-([a-z]+[0-9]+)$`)

// baseURL is where the API answers for key: BaseURL, or the key's datacenter.
func (c *Config) baseURL(key, setting string) (string, error) {
	if c.BaseURL != "" {
		return strings.TrimRight(c.BaseURL, "/"), nil
	}
	m := datacenter.FindStringSubmatch(key)
	if m == nil {
		return "", errors.New("the API key from " + setting + " has no datacenter suffix (such as -us6)")
	}
	return "https://" + m[1] + ".api.mailchimp.com/3.0", nil
}
