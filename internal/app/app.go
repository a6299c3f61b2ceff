// Package app connects a Lethe process to its dependencies from the configuration and runs its
// long-lived parts (worker, HTTP server). The commands in cmd/lethe choose which parts to run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/bridge"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/exports"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/intake"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/runner"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/web"
	"github.com/lethe-privacy/lethe/worker"
)

// Deps are the connections a Lethe process holds. Each is nil unless asked for.
type Deps struct {
	Cfg      config.Config
	Log      *slog.Logger
	Store    *store.Store
	Bus      *bus.Bus
	Temporal client.Client
	Exports  *exports.Dir
	// Mail sends notices to subjects; nil until Mailer is first called.
	Mail mail.Sender

	keys crypto.ConnectorKeys
}

// Need says which dependencies to connect.
type Need struct {
	Store, Bus, Temporal bool
}

// All is every dependency.
var All = Need{Store: true, Bus: true, Temporal: true}

// Connect opens what need asks for. Every failure names the setting to fix, so a bad
// configuration stops the start with one line.
func Connect(ctx context.Context, cfg config.Config, log *slog.Logger, need Need) (*Deps, error) {
	d := &Deps{Cfg: cfg, Log: log}
	ex, err := exports.NewDir(cfg.Exports.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.Setting("exports.dir"), err)
	}
	d.Exports = ex
	if need.Store {
		s, err := store.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.Setting("database.url"), err)
		}
		d.Store = s
	}
	if need.Bus {
		bc, err := BusConfig(cfg.Kafka, log)
		if err != nil {
			d.Close()
			return nil, err
		}
		b, err := bus.Open(ctx, bc)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", config.Setting("kafka.brokers"), err)
		}
		d.Bus = b
	}
	if need.Temporal {
		c, err := DialTemporal(ctx, cfg.Temporal, log)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.Temporal = c
	}
	return d, nil
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
func (d *Deps) Close() {
	if d.Temporal != nil {
		d.Temporal.Close()
	}
	if d.Bus != nil {
		_ = d.Bus.Close()
	}
	if d.Store != nil {
		d.Store.Close()
	}
}

// Topics are the Kafka topics of the deployment: the core ones and one command topic per
// connector instance, in-process or remote (auto-creation is off, so a topic not made here never exists).
func Topics(cfg config.Config) []string { return bus.Topics(cfg.CommandConnectors()...) }

// EnsureTopics creates every topic of the deployment that does not exist yet and sets the
// configured retention on those that do.
func (d *Deps) EnsureTopics(ctx context.Context) error {
	return d.Bus.EnsureTopics(ctx, Topics(d.Cfg)...)
}

// Checkers lists the opened dependencies for /readyz.
func (d *Deps) Checkers() []api.Checker {
	var cs []api.Checker
	if d.Store != nil {
		cs = append(cs, d.Store)
	}
	if d.Bus != nil {
		cs = append(cs, d.Bus)
	}
	if d.Temporal != nil {
		cs = append(cs, api.TemporalChecker(d.Temporal))
	}
	return cs
}

// Mailer returns the mail sender, building the Mailgun one from the settings on first use.
func (d *Deps) Mailer() (mail.Sender, error) {
	if d.Mail != nil {
		return d.Mail, nil
	}
	m, err := mail.NewMailgun(mail.Config{
		Domain: d.Cfg.Mail.Domain, APIKey: d.Cfg.Mail.APIKey.Value(), Region: d.Cfg.Mail.Region,
		APIBase: d.Cfg.Mail.APIBase, From: d.Cfg.Mail.From,
	})
	if err != nil {
		// One line, even when several mail settings are wrong.
		return nil, errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	d.Mail = m
	return m, nil
}

// ConnectorKeys are the key rings of every connector, built on first use: only processes that
// seal or open commands need the keys.
func (d *Deps) ConnectorKeys() (crypto.ConnectorKeys, error) {
	if d.keys == nil {
		keys, err := crypto.NewConnectorKeys(d.Cfg.Secrets.SigningKey.Value(), d.Cfg.CommandConnectors(), d.Cfg.ConnectorKeyList)
		if err != nil {
			return nil, err
		}
		d.keys = keys
	}
	return d.keys, nil
}

// Activities builds the activity set from the opened dependencies and the mail settings.
func (d *Deps) Activities() (*activities.Activities, error) {
	m, err := d.Mailer()
	if err != nil {
		return nil, err
	}
	keys, err := d.ConnectorKeys()
	if err != nil {
		return nil, err
	}
	tenants := map[string]config.Tenant{}
	for _, t := range d.Cfg.Tenants {
		tenants[t.ID] = t
	}
	return &activities.Activities{
		Store: d.Store, Bus: d.Bus, Mail: m, Exports: d.Exports, ExportBase: d.Exports.URI(""),
		Codes:     &identity.Codes{Pool: d.Store.Pool, Key: []byte(d.Cfg.Secrets.SigningKey.Value())},
		PublicURL: d.Cfg.HTTP.PublicURL, MyAccountPath: d.Cfg.MyAccountPath,
		SigningKey: d.Cfg.Secrets.SigningKey.Value(), Tenants: tenants, Keys: keys,
	}, nil
}

// Requests is the request service over the opened dependencies, without rate limits: for
// the tools staff run. Surfaces open to outside callers use Limited.
func (d *Deps) Requests() *requests.Service {
	return &requests.Service{Temporal: d.Temporal, Store: d.Store, Cfg: d.Cfg, ExportBase: d.Exports.URI(""), Mail: d.Mail}
}

// Limited is the request service with the rate limits every surface shares (limits.*),
// counted in PostgreSQL across all Lethe processes.
func (d *Deps) Limited() *requests.Service {
	svc := d.Requests()
	svc.Limits = limits.New(d.Store, d.Cfg.Limits, d.Cfg.Secrets.SigningKey.Value(), nil)
	return svc
}

// Server builds the HTTP surface: health, readiness and metrics, the /v1 API, and every
// tenant's MyAccount pages (see config.MyAccountPath).
func (d *Deps) Server() (*api.Server, error) {
	if _, err := d.Mailer(); err != nil {
		return nil, err
	}
	srv := api.New(d.Log, d.Checkers()...)
	srv.Handle("POST /webhooks/mailgun", &api.MailgunWebhook{SigningKey: d.Cfg.Mail.WebhookSigningKey.Value(), Pool: d.Store.Pool, Log: d.Log})
	svc := d.Limited()
	if err := srv.MountV1(api.V1Options{Requests: svc, Log: d.Log}); err != nil {
		return nil, err
	}
	proxies, err := config.ParseProxies(d.Cfg.HTTP.TrustedProxies)
	if err != nil {
		return nil, err
	}
	for _, t := range d.Cfg.Tenants {
		base := d.Cfg.MyAccountPath(t.ID)
		h := web.MyAccount(svc, t.ID, web.Options{
			SigningKey: []byte(d.Cfg.Secrets.SigningKey.Value()), Base: base,
			Secure: strings.HasPrefix(d.Cfg.HTTP.PublicURL, "https:"), Log: d.Log,
			TrustedProxies: proxies, MaxFormBytes: d.Cfg.Limits.MaxFormBytes,
		})
		srv.Handle(base, h)
		srv.Handle(base+"/", h)
	}
	return srv, nil
}

// RunWorker polls the task queue until ctx ends.
func (d *Deps) RunWorker(ctx context.Context) error {
	acts, err := d.Activities()
	if err != nil {
		return err
	}
	w := worker.New(d.Temporal, d.Cfg.Temporal.TaskQueue, acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the Temporal worker on task queue %s: %w", d.Cfg.Temporal.TaskQueue, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.reconcileEvery(ctx, ReconcileEvery)
	}()
	<-ctx.Done()
	w.Stop()
	<-done
	return nil
}

// ReconcileEvery is how often a worker looks for requests whose workflow closed without the
// read model saying so. A termination or a timeout in Temporal runs no workflow code, so only
// this notices them; every five minutes keeps the DPO's view at most that stale, for one
// DescribeWorkflowExecution per open request.
const ReconcileEvery = 5 * time.Minute

// reconcileEvery reconciles at once (a worker that was down may have missed closures) and then
// every interval until ctx ends. A failed pass is logged and tried again next time.
func (d *Deps) reconcileEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := d.Reconcile(ctx); err != nil && ctx.Err() == nil {
			d.Log.Error("reconciling closed workflows", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile records every request whose workflow closed in Temporal while the read model shows
// it live (see requests.Service.Reconcile). It needs the store, the bus and Temporal.
func (d *Deps) Reconcile(ctx context.Context) ([]requests.Closure, error) {
	rec := &activities.Activities{Store: d.Store, Bus: d.Bus}
	closed, err := d.Requests().Reconcile(ctx, rec.RecordTransition)
	for _, c := range closed {
		d.Log.Warn("request's workflow closed in Temporal; recorded as failed", "request_id", c.RequestID, "tenant_id", c.TenantID, "close_status", c.CloseStatus)
	}
	return closed, err
}

// RunBridge runs everything that turns Kafka messages into Temporal calls until ctx ends:
// connector results complete fan-out activities; intake messages and consent changes start
// requests.
func (d *Deps) RunBridge(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return (&bridge.Bridge{Bus: d.Bus, Store: d.Store, Temporal: d.Temporal, Log: d.Log}).Run(ctx)
	})
	g.Go(func() error {
		in := &intake.Intake{Bus: d.Bus, Requests: d.Limited(), Store: d.Store, SigningKey: d.Cfg.Secrets.SigningKey.Value(), Log: d.Log}
		return in.Run(ctx)
	})
	return g.Wait()
}

// RunConnector serves one configured connector instance over Kafka until ctx ends.
func (d *Deps) RunConnector(ctx context.Context, name string) error {
	in, err := d.Cfg.Served(name)
	if err != nil {
		return err
	}
	at := "connectors[" + name + "]"
	raw, err := in.ConfigYAML()
	if err != nil {
		return fmt.Errorf("%s.config: %w", at, err)
	}
	c, err := connectors.Open(in.Type, raw)
	if err != nil {
		return fmt.Errorf("%s.config: %w", at, err)
	}
	defer c.Close()
	// Every command topic, not only this one: a runner is often the first process of a
	// deployment to start, and a remote connector's topic has no runner of Lethe's to make it.
	if err := d.EnsureTopics(ctx); err != nil {
		return err
	}
	keys, err := d.ConnectorKeys()
	if err != nil {
		return err
	}
	ring, err := keys.Ring(name)
	if err != nil {
		return err
	}
	d.Log.Info("serving connector", "connector", name, "type", in.Type)
	r := &runner.Runner{Connector: c, Name: name, Keys: ring, Bus: d.Bus, Store: d.Store, Exports: d.Exports, Log: d.Log} // the runner names the connector in each line
	return r.Run(ctx)
}

// Listen binds the HTTP address now, so a port in use fails the start with a clear line.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.Setting("http.addr"), err)
	}
	return l, nil
}

// Timeouts bound how long one HTTP connection may hold the server.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// HTTPTimeouts are the server's limits. Every request body is capped (1 MiB at most, for the
// Mailgun webhook), so 30 s to read one is generous even on a poor mobile link, and 10 s for
// headers cuts slow-header (slowloris) clients early. Every JSON answer is small and its
// handler bounded by its own calls (readiness checks 5 s, Temporal and PostgreSQL calls well
// under a minute), so 60 s to write is ample; an export download may legitimately take longer
// and moves its own deadline on while bytes flow (exports.Send). Idle keep-alive connections go
// after 2 min.
func HTTPTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: time.Minute, Idle: 2 * time.Minute}
}

// NewHTTPServer is the HTTP server for h with the given limits.
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
}

// Serve runs h on l until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := NewHTTPServer(h, HTTPTimeouts())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
