// Package activities holds the Temporal activities: methods on structs that carry their
// dependencies. Method names are persisted in workflow histories: never rename one.
package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/metrics"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/texts"
)

// Activities is the set of activities run by a Lethe worker.
type Activities struct {
	Store *store.Store
	Bus   *bus.Bus
	// Temporal starts the workflows a step starts to run later (StartExportExpiry).
	Temporal client.Client
	Mail     mail.Sender
	// Batch sends a breach's notice to the people affected, up to mail.MaxBatch a call.
	Batch mail.BatchSender
	// NoticeSettle is how long a notice batch whose send went unanswered waits for Mailgun's
	// events before it is sent again (see SendNoticeBatch).
	NoticeSettle time.Duration
	// Texts sends texts from a tenant's sender (tenants[].sms): verification codes, notices.
	Texts   *texts.Sender
	Codes   *identity.Codes
	Exports exportstore.Store
	// ExportBase is the export store URI prefix for connectors' files and packages.
	ExportBase string
	// PublicURL is where subjects reach MyAccount, for links in notices.
	PublicURL string
	// MyAccountPath maps a tenant to the path of its MyAccount pages.
	MyAccountPath func(tenant string) string
	// SigningKey keys the consent ledger's subject hashes.
	SigningKey string
	// Keys seal each connector's commands: identifiers never reach Kafka in clear.
	Keys    crypto.ConnectorKeys
	Tenants map[string]config.Tenant
	// ConsentPurposes are the instances' consent_purpose: a notify to one waits for the
	// subject's consent to it (checkConsent).
	ConsentPurposes map[string]string
	// Metrics observes requests' time to close; nil observes nothing.
	Metrics *metrics.Metrics
	// Connectors are the connector instances, for the purges of subjects whose expiry passed.
	Connectors []config.Connector
	// ExportExpiry is how long a closed request's export is kept (exports.expire_after_days).
	ExportExpiry time.Duration
	// SlackAPI is Slack's Web API base ("" for Slack itself; the stand-in in lethe dev and tests).
	SlackAPI string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Checker is a dependency that can say whether it is reachable.
type Checker interface {
	Name() string
	Check(ctx context.Context) error
}

// SelfCheck checks the worker's dependencies and records the check in the audit trail.
func (a *Activities) SelfCheck(ctx context.Context, requestedBy string) (map[string]string, error) {
	out := map[string]string{}
	for _, c := range []Checker{a.Store, a.Bus} {
		if err := c.Check(ctx); err != nil {
			return nil, fmt.Errorf("checking %s: %w", c.Name(), err)
		}
		out[c.Name()] = "ok"
	}
	detail := map[string]any{}
	for k, v := range out {
		detail[k] = v
	}
	if _, err := a.Store.Audit().Append(ctx, a.Store.Pool, store.Event{Actor: requestedBy, Action: "worker.self_check", Detail: detail}); err != nil {
		return nil, fmt.Errorf("recording self-check: %w", err)
	}
	return out, nil
}
