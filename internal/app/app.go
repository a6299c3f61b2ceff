// Package app is Lethe's composition root: it builds one Stack from the configuration (New)
// and runs its long-lived parts (the worker, the Kafka consumers, the HTTP surfaces). The
// commands in cmd/lethe choose which parts a process runs; lethe dev and the test harness run
// them all.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/breachreport"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/metrics"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/retention"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/texts"
)

// Stack is one Lethe process: its configuration and the connections and services built from
// it. New builds it in one fixed order, so every part exists before anything uses it; what
// the process did not ask for (Need) stays nil. lethe dev, every process command and the test
// harness (internal/teststack) build it the same way.
type Stack struct {
	Cfg      config.Config
	Log      *slog.Logger
	Exports  *exportstore.Dir
	Store    *store.Store
	Bus      *bus.Bus
	Temporal client.Client
	// Mail sends notices to subjects: the Mailgun sender, or Mailbox in front of it.
	Mail mail.Sender
	// Batch sends breach notices to many people a call: the Mailgun sender itself (the dev
	// mailbox keeps single notices only).
	Batch mail.BatchSender
	// Mailbox keeps the mail sent, for /dev/mailbox (Need.Mailbox).
	Mailbox *mail.Mailbox
	// Texts sends the tenants' own texts (tenants[].sms); it opens an instance when first used.
	Texts *texts.Sender
	// Keys seal and open connector commands.
	Keys crypto.ConnectorKeys
	// Metrics is the process's /metrics: every part of the process observes into it.
	Metrics *metrics.Metrics

	readModel sync.Once // the read-model gauges, registered by the first Handler
}

// Need says which parts of the stack to build. A command builds only what it uses, so it
// needs no settings for the rest.
type Need struct {
	Store, Bus, Temporal bool
	// Mail builds the Mailgun sender from mail.*; Mailbox, above zero, puts a dev mailbox
	// keeping that many messages in front of it.
	Mail    bool
	Mailbox int
	// Keys builds the connectors' key rings, for processes that seal or open commands.
	Keys bool
}

// All is what a service process (serve, worker, bridge) needs.
var All = Need{Store: true, Bus: true, Temporal: true, Mail: true, Keys: true}

// New builds the stack need asks for, in this order: exports, PostgreSQL, Kafka, Temporal,
// mail, connector keys. Every failure names the setting to fix, so a bad configuration stops
// the start with one line; what was opened before it is closed again.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, need Need) (*Stack, error) {
	s := &Stack{Cfg: cfg, Log: log, Metrics: metrics.New()}
	s.Texts = texts.New(&s.Cfg)
	if err := s.build(ctx, need); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) build(ctx context.Context, need Need) error {
	var err error
	if s.Exports, err = exportstore.NewDir(s.Cfg.Exports.Dir); err != nil {
		return fmt.Errorf("%s: %w", config.Setting("exports.dir"), err)
	}
	if need.Store {
		if s.Store, err = store.Open(ctx, s.Cfg.Database.URL, s.Cfg.Database.MaxConns); err != nil {
			return fmt.Errorf("%s: %w", config.Setting("database.url"), err)
		}
	}
	if need.Bus {
		bc, err := BusConfig(s.Cfg.Kafka, s.Log)
		if err != nil {
			return err
		}
		bc.Metrics = s.Metrics
		if s.Bus, err = bus.Open(ctx, bc); err != nil {
			return fmt.Errorf("%s: %w", config.Setting("kafka.brokers"), err)
		}
		// The lag of the consumer groups this process runs (none in serve).
		if err := s.Metrics.KafkaLag(s.Bus, s.Cfg.HTTP.MetricsRefresh); err != nil {
			return fmt.Errorf("registering the Kafka lag metrics: %w", err)
		}
	}
	if need.Temporal {
		if s.Temporal, err = DialTemporal(ctx, s.Cfg.Temporal, s.Log); err != nil {
			return err
		}
	}
	if need.Mail || need.Mailbox > 0 {
		mg, err := newMailgun(s.Cfg.Mail)
		if err != nil {
			return err
		}
		s.Mail, s.Batch = mg, mg
		if need.Mailbox > 0 {
			s.Mailbox = mail.NewMailbox(s.Mail, need.Mailbox)
			s.Mail = s.Mailbox
		}
	}
	if need.Keys {
		if s.Keys, err = crypto.NewConnectorKeys(s.Cfg.Secrets.SigningKey.Value(), s.Cfg.CommandConnectors(), s.Cfg.ConnectorKeyList); err != nil {
			return err
		}
	}
	return nil
}

// newMailgun is the Mailgun sender of the mail settings.
func newMailgun(cfg config.Mail) (*mail.Mailgun, error) {
	m, err := mail.NewMailgun(mail.Config{
		Domain: cfg.Domain, APIKey: cfg.APIKey.Value(), Region: cfg.Region, APIBase: cfg.APIBase, From: cfg.From,
	})
	if err != nil {
		// One line, even when several mail settings are wrong.
		return nil, errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return m, nil
}

// BusConfig is how the bus reaches the configured Kafka cluster.
func BusConfig(cfg config.Kafka, log *slog.Logger) (bus.Config, error) {
	mech, err := cfg.SASL.Build()
	if err != nil {
		return bus.Config{}, fmt.Errorf("%s: %w", config.Setting("kafka.sasl.mechanism"), err)
	}
	return bus.Config{
		Brokers: cfg.Brokers, ClientID: cfg.ClientID, Logger: log,
		Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor,
		TopicPrefix: cfg.TopicPrefix, Retention: bus.Retention(cfg.Retention),
		TLS: cfg.TLS.Config(), SASL: mech,
	}, nil
}

// TemporalOptions are the client options for the configured Temporal frontend: TLS and an API
// key (Temporal Cloud) when set.
func TemporalOptions(cfg config.Temporal, log *slog.Logger) client.Options {
	o := client.Options{
		HostPort: cfg.HostPort, Namespace: cfg.Namespace, Logger: newTemporalLogger(log),
		ConnectionOptions: client.ConnectionOptions{TLS: cfg.TLS.Config()},
	}
	if key := cfg.APIKey.Value(); key != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	return o
}

// DialTemporal connects to the Temporal frontend and checks it answers.
func DialTemporal(ctx context.Context, cfg config.Temporal, log *slog.Logger) (client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, TemporalOptions(cfg, log))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot reach Temporal at %s: %s", config.Setting("temporal.host_port"), cfg.HostPort, dialCause(err))
	}
	if _, err := c.CheckHealth(dctx, &client.CheckHealthRequest{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: Temporal is not healthy: %w", config.Setting("temporal.host_port"), err)
	}
	return c, nil
}

// dialCause is the dial error inside gRPC's wording ("failed reaching server: connection
// error: desc = \"transport: Error while dialing: dial tcp ...\""), else the whole message.
func dialCause(err error) string {
	msg := err.Error()
	if _, cause, ok := strings.Cut(msg, "Error while dialing: "); ok {
		return strings.TrimSuffix(cause, `"`)
	}
	return msg
}

// Close releases whatever was opened.
func (s *Stack) Close() {
	if s.Texts != nil {
		_ = s.Texts.Close()
	}
	if s.Temporal != nil {
		s.Temporal.Close()
	}
	if s.Bus != nil {
		_ = s.Bus.Close()
	}
	if s.Store != nil {
		s.Store.Close()
	}
}

// Topics are the Kafka topics of the deployment: the core ones and one command topic per
// connector instance, in-process or remote (auto-creation is off, so a topic not made here never exists).
func Topics(cfg config.Config) []string { return bus.Topics(cfg.CommandConnectors()...) }

// EnsureTopics creates every topic of the deployment that does not exist yet and sets the
// configured retention on those that do.
func (s *Stack) EnsureTopics(ctx context.Context) error {
	return s.Bus.EnsureTopics(ctx, Topics(s.Cfg)...)
}

// Prepare applies the migrations and creates the topics, reporting each step, so a stack
// that runs everything in one process (lethe dev, tests) starts on the current schema.
func (s *Stack) Prepare(ctx context.Context, step func(format string, args ...any)) error {
	step("applying migrations")
	if _, err := s.Store.Migrate(ctx); err != nil {
		return err
	}
	step("creating Kafka topics")
	return s.EnsureTopics(ctx)
}

// Checkers lists the opened dependencies for /readyz.
func (s *Stack) Checkers() []api.Checker {
	var cs []api.Checker
	if s.Store != nil {
		cs = append(cs, s.Store)
	}
	if s.Bus != nil {
		cs = append(cs, s.Bus)
	}
	if s.Temporal != nil {
		cs = append(cs, api.TemporalChecker(s.Temporal))
	}
	return cs
}

// Activities is the activity set over the stack; the worker needs All.
func (s *Stack) Activities() *activities.Activities {
	tenants := map[string]config.Tenant{}
	for _, t := range s.Cfg.Tenants {
		tenants[t.ID] = t
	}
	purposes := map[string]string{}
	for _, in := range s.Cfg.Connectors {
		purposes[in.Name] = in.ConsentPurpose
	}
	return &activities.Activities{
		Store: s.Store, Bus: s.Bus, Temporal: s.Temporal, Mail: s.Mail, Batch: s.Batch, NoticeSettle: s.Cfg.Mail.BatchSettle, Texts: s.Texts,
		Exports: s.Exports, ExportBase: s.Exports.URI(""),
		Codes:     &identity.Codes{Pool: s.Store.Pool, Key: []byte(s.Cfg.Secrets.SigningKey.Value())},
		PublicURL: s.Cfg.HTTP.PublicURL, MyAccountPath: s.Cfg.MyAccountPath,
		SigningKey: s.Cfg.Secrets.SigningKey.Value(), Tenants: tenants, Keys: s.Keys, SlackAPI: s.Cfg.Slack.APIURL,
		ConsentPurposes: purposes, Metrics: s.Metrics,
		Connectors: s.Cfg.Connectors, ExportExpiry: s.Cfg.ExportExpiry(),
	}
}

// Requests is the request service over the stack, without rate limits: for the tools staff
// run. Surfaces open to outside callers use Limited.
func (s *Stack) Requests() *requests.Service {
	return &requests.Service{Temporal: s.Temporal, Store: s.Store, Cfg: s.Cfg, ExportBase: s.Exports.URI("")}
}

// Retention is the retention service over the stack: runs, their status, subjects' expiry dates.
func (s *Stack) Retention() *retention.Service {
	return &retention.Service{Temporal: s.Temporal, Store: s.Store, Cfg: s.Cfg}
}

// Breaches is the breach service over the stack.
func (s *Stack) Breaches() *breaches.Service {
	return &breaches.Service{Temporal: s.Temporal, Store: s.Store, Cfg: s.Cfg, ExportBase: s.Exports.URI("")}
}

// BreachReports is the service that generates, keeps and serves breaches' authority reports.
func (s *Stack) BreachReports() *breachreport.Service {
	return &breachreport.Service{Store: s.Store, Exports: s.Exports, Base: s.Exports.URI(""),
		SigningKey: s.Cfg.Secrets.SigningKey.Value(), PublicURL: s.Cfg.HTTP.PublicURL}
}

// Limited is the request service with the rate limits every surface shares (limits.*),
// counted in PostgreSQL across all Lethe processes.
func (s *Stack) Limited() *requests.Service {
	svc := s.Requests()
	svc.Limits = limits.New(s.Store, s.Cfg.Limits, s.Cfg.Secrets.SigningKey.Value(), nil)
	return svc
}
