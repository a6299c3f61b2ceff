// Package mailchimp is the connector for Mailchimp audiences (Marketing API v3). A subject is
// the member addressed by the MD5 of their lower-cased email address in each configured
// audience. Access streams the member record, merge fields, marketing permissions, tags and
// activity; rectify changes merge fields and the address; restrict archives the member, and
// with params {"purpose": "marketing"} (an objection) unsubscribes at once; erase deletes the
// member permanently. See README.md.
package mailchimp

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lethe-privacy/lethe/connectors"
)

// Name is the registered connector name.
const Name = "mailchimp"

// Capabilities of the Mailchimp connector.
var Capabilities = []connectors.Capability{connectors.CapAccess, connectors.CapErase, connectors.CapRectify, connectors.CapRestrict}

func init() {
	connectors.MustRegister(connectors.Info{
		Name:         Name,
		Description:  "Mailchimp audience members (Marketing API v3): access, rectification, archive or unsubscribe, permanent deletion",
		Capabilities: Capabilities,
		NewConfig:    func() connectors.Config { return NewConfig() },
		New:          func(c connectors.Config) (connectors.Connector, error) { return New(c.(*Config)) },
	})
}

// Connector is the Mailchimp connector. It is safe for concurrent use.
type Connector struct {
	cfg *Config
	api *client
}

var (
	_ connectors.Accessor   = (*Connector)(nil)
	_ connectors.Eraser     = (*Connector)(nil)
	_ connectors.Rectifier  = (*Connector)(nil)
	_ connectors.Restricter = (*Connector)(nil)
)

// New builds the connector from a validated config, reading the API key. It does not contact
// Mailchimp: Check does.
func New(cfg *Config) (*Connector, error) {
	setting := "api_key_file " + cfg.APIKeyFile
	if cfg.APIKeyEnv != "" {
		setting = "api_key_env " + cfg.APIKeyEnv
	}
	key, err := connectors.ReadSecret("the mailchimp API key", cfg.APIKeyEnv, cfg.APIKeyFile)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, errors.New("the mailchimp API key from " + setting + " is empty")
	}
	base, err := cfg.baseURL(key, setting)
	if err != nil {
		return nil, err
	}
	return &Connector{cfg: cfg, api: &client{http: &http.Client{Timeout: cfg.Timeout}, base: base, key: key, setting: setting}}, nil
}

// Name implements connectors.Connector.
func (c *Connector) Name() string { return Name }

// Close implements connectors.Connector.
func (c *Connector) Close() error {
	c.api.http.CloseIdleConnections()
	return nil
}

// Check verifies the key and that every configured audience exists.
func (c *Connector) Check(ctx context.Context) error {
	if err := c.api.ping(ctx); err != nil {
		return err
	}
	for i, id := range c.cfg.Audiences {
		if err := c.api.list(ctx, id); err != nil {
			if notFound(err) {
				return connectors.Permanent(fmt.Errorf("audiences[%d]: mailchimp has no audience %q", i, id))
			}
			return err
		}
	}
	return nil
}

// subscriberHash is how the API addresses a member: the MD5 of the lower-cased address.
func subscriberHash(email string) string {
	sum := md5.Sum([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// subjectHash is the task subject's subscriber hash; "" when the subject has no email (a
// member is addressed by email only, so nothing here is theirs).
func subjectHash(task connectors.Task) (string, error) {
	if task.Subject.IsZero() {
		return "", connectors.Permanent(connectors.ErrNoSubject)
	}
	if strings.TrimSpace(task.Subject.Email) == "" {
		return "", nil
	}
	return subscriberHash(task.Subject.Email), nil
}

// subjectMembers reads the task subject's member record in each audience that has one.
func (c *Connector) subjectMembers(ctx context.Context, task connectors.Task) ([]held, error) {
	hash, err := subjectHash(task)
	if err != nil {
		return nil, err
	}
	return c.members(ctx, hash)
}

// held is one audience's member record of the subject.
type held struct {
	audience string
	hash     string
	m        member
}

// members reads the subject's member record in each audience that has one.
func (c *Connector) members(ctx context.Context, hash string) ([]held, error) {
	if hash == "" {
		return nil, nil
	}
	var out []held
	for _, id := range c.cfg.Audiences {
		m, err := c.api.member(ctx, id, hash)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, held{audience: id, hash: hash, m: m})
	}
	return out, nil
}
