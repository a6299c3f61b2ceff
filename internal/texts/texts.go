// Package texts sends the text messages Lethe itself sends for a tenant (verification codes,
// breach notices to people known only by phone) through the tenant's sms connector instance
// (tenants[].sms), opened in the sending process.
package texts

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/internal/config"
)

// ErrNoSender: the tenant has no sms instance configured (tenants[].sms).
var ErrNoSender = errors.New("the tenant sends no texts: set tenants[].sms to an sms connector instance")

// Sender sends texts for the configured tenants; it opens each instance once, when first used.
// It is safe for concurrent use.
type Sender struct {
	cfg  *config.Config
	mu   sync.Mutex
	open map[string]*sms.Connector
}

// New returns a Sender for cfg's tenants.
func New(cfg *config.Config) *Sender {
	return &Sender{cfg: cfg, open: map[string]*sms.Connector{}}
}

// Enabled reports whether tenant has an sms instance.
func (s *Sender) Enabled(tenant string) bool {
	t, ok := s.cfg.Tenant(tenant)
	return ok && t.SMS != ""
}

// Send texts body to phone from tenant's sender and returns Twilio's message SID. key names
// the text for the connector's memory of recent sends (a repeat in this process answers from
// it). Errors are the connector's, classified with connectors.IsPermanent and RetryAfter.
func (s *Sender) Send(ctx context.Context, tenant, key, phone, body string) (string, error) {
	return s.SendTracked(ctx, tenant, key, phone, body, "")
}

// SendTracked is Send with Twilio told to post the text's status changes to statusCallback
// (none if empty).
func (s *Sender) SendTracked(ctx context.Context, tenant, key, phone, body, statusCallback string) (string, error) {
	c, err := s.connector(tenant)
	if err != nil {
		return "", err
	}
	params := map[string]any{"channel": string(connectors.ChannelSMS), "body": body}
	if statusCallback != "" {
		params["status_callback"] = statusCallback
	}
	res, err := c.Notify(ctx, connectors.Task{
		Key: key, TenantID: tenant, Subject: connectors.Subject{Phone: phone}, Params: params,
	})
	if err != nil {
		return "", err
	}
	return res.MessageID, nil
}

// Sent returns the SID of a text with exactly body already sent from tenant's sender to phone,
// if there is one: what a sender whose earlier attempt went unanswered asks before sending.
func (s *Sender) Sent(ctx context.Context, tenant, phone, body string) (string, bool, error) {
	c, err := s.connector(tenant)
	if err != nil {
		return "", false, err
	}
	return c.Texted(ctx, tenant, phone, body)
}

// Close releases the instances opened.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, c := range s.open {
		_ = c.Close()
		delete(s.open, name)
	}
	return nil
}

func (s *Sender) connector(tenant string) (*sms.Connector, error) {
	t, ok := s.cfg.Tenant(tenant)
	if !ok || t.SMS == "" {
		return nil, connectors.Permanent(ErrNoSender)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.open[t.SMS]; ok {
		return c, nil
	}
	in, ok := s.cfg.Connector(t.SMS)
	if !ok {
		return nil, connectors.Permanent(fmt.Errorf("tenants[%s].sms: no connector instance named %q", tenant, t.SMS))
	}
	raw, err := in.ConfigYAML()
	if err != nil {
		return nil, err
	}
	opened, err := connectors.Open(in.Type, raw)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("connectors[%s]: %w", in.Name, err))
	}
	c, ok := opened.(*sms.Connector)
	if !ok {
		_ = opened.Close()
		return nil, connectors.Permanent(fmt.Errorf("connectors[%s]: type %s is not the sms connector", in.Name, in.Type))
	}
	s.open[t.SMS] = c
	return c, nil
}
