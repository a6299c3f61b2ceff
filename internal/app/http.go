package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/connectors/webhook"
	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/dashboard"
	"github.com/lethe-privacy/lethe/internal/intake"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/runner"
	"github.com/lethe-privacy/lethe/internal/slackapp"
	"github.com/lethe-privacy/lethe/internal/web"
	"github.com/lethe-privacy/lethe/internal/webhooks"
)

// surfaces are the HTTP surfaces of a Lethe process, in the order they are mounted. Each is
// its package's Mount, given what it needs from the stack; a new surface (a dashboard, a
// Slack endpoint) is one more entry.
var surfaces = []func(s *Stack, mux *http.ServeMux) error{
	mountHealth,
	mountReadModelMetrics,
	mountV1,
	mountWebhooks,
	mountTwilio,
	mountMyAccount,
	mountMailbox,
	mountSlack,
	mountDashboard,
	mountCallbacks,
}

// mountCallbacks serves the callbacks of webhook connector instances: each instance's
// connector is opened here too, so its settings must reach the HTTP process.
func mountCallbacks(s *Stack, mux *http.ServeMux) error {
	runners := map[string]*runner.Runner{}
	for _, in := range s.Cfg.Connectors {
		if in.Type != webhook.Name {
			continue
		}
		r, err := s.Runner(in.Name)
		if err != nil {
			return err
		}
		runners[in.Name] = r
	}
	(&webhooks.Callbacks{Runners: runners, Store: s.Store, Log: s.Log}).Mount(mux)
	return nil
}

// mountHealth serves /healthz, /readyz over the stack's connections, and the process's /metrics.
func mountHealth(s *Stack, mux *http.ServeMux) error {
	api.MountHealth(mux, s.Log, s.Metrics.Registry, s.Checkers()...)
	return nil
}

// mountReadModelMetrics adds the gauges read from PostgreSQL to the /metrics of the process
// that serves HTTP (serve, dev), once: one process exports them, so they are not counted twice.
func mountReadModelMetrics(s *Stack, _ *http.ServeMux) error {
	var err error
	s.readModel.Do(func() {
		var tenants []string
		for _, t := range s.Cfg.Tenants {
			tenants = append(tenants, t.ID)
		}
		err = s.Metrics.ReadModel(s.Store, tenants, s.Cfg.HTTP.MetricsRefresh, nil)
	})
	return err
}

// mountV1 serves the /v1 API, rate-limited.
func mountV1(s *Stack, mux *http.ServeMux) error {
	return api.MountV1(mux, api.V1Options{Requests: s.Limited(), Breaches: s.Breaches(), Reports: s.BreachReports(), Retention: s.Retention(), Log: s.Log})
}

// mountWebhooks serves the mail provider's delivery events.
func mountWebhooks(s *Stack, mux *http.ServeMux) error {
	api.MountWebhooks(mux, &api.MailgunWebhook{SigningKey: s.Cfg.Mail.WebhookSigningKey.Value(), Pool: s.Store.Pool, Log: s.Log})
	return nil
}

// mountTwilio serves the inbound-text webhook of each sms connector instance; an instance whose
// configuration or auth token does not load stops the start.
func mountTwilio(s *Stack, mux *http.ServeMux) error {
	instances := map[string]api.TwilioInstance{}
	info, _ := connectors.Lookup(sms.Name)
	for _, in := range s.Cfg.Connectors {
		if in.Type != sms.Name {
			continue
		}
		raw, err := in.ConfigYAML()
		if err != nil {
			return fmt.Errorf("connectors[%s].config: %w", in.Name, err)
		}
		cfg, err := connectors.DecodeConfig(info, raw)
		if err != nil {
			return fmt.Errorf("connectors[%s].config: %w", in.Name, err)
		}
		token, err := cfg.(*sms.Config).AuthToken()
		if err != nil {
			return fmt.Errorf("connectors[%s].config.%w", in.Name, err)
		}
		instances[in.Name] = api.TwilioInstance{Config: cfg.(*sms.Config), Token: token}
	}
	// Mounted with no instance too: a call then gets the documented JSON 404.
	in := &intake.Intake{Requests: s.Limited(), Store: s.Store, SigningKey: s.Cfg.Secrets.SigningKey.Value(), Log: s.Log}
	api.MountTwilio(mux, &api.TwilioWebhook{Instances: instances, PublicURL: s.Cfg.HTTP.PublicURL, Record: in.RecordConsent, Log: s.Log,
		Delivered: func(ctx context.Context, tenants []string, breachID string, seq int64, sid, event string, at time.Time) error {
			return s.Store.Notices().TextDelivered(ctx, s.Store.Pool, tenants, breachID, seq, sid, event, at)
		}})
	return nil
}

// mountMyAccount serves every tenant's MyAccount pages (see config.MyAccountPath), rate-limited.
func mountMyAccount(s *Stack, mux *http.ServeMux) error {
	proxies, err := config.ParseProxies(s.Cfg.HTTP.TrustedProxies)
	if err != nil {
		return err
	}
	web.Mount(mux, s.Limited(), web.Options{
		SigningKey: []byte(s.Cfg.Secrets.SigningKey.Value()),
		Secure:     strings.HasPrefix(s.Cfg.HTTP.PublicURL, "https:"), Log: s.Log,
		TrustedProxies: proxies, MaxFormBytes: s.Cfg.Limits.MaxFormBytes,
	})
	return nil
}

// mountMailbox serves /dev/mailbox when the stack keeps one (lethe dev, tests).
func mountMailbox(s *Stack, mux *http.ServeMux) error {
	if s.Mailbox != nil {
		mail.MountMailbox(mux, s.Mailbox)
	}
	return nil
}

// mountSlack serves /slack/interactions when a tenant has Slack settings.
func mountSlack(s *Stack, mux *http.ServeMux) error {
	slackapp.Mount(mux, s.slackOptions())
	return nil
}

// mountDashboard serves /dashboard, the DPO's pages.
func mountDashboard(s *Stack, mux *http.ServeMux) error {
	return dashboard.Mount(mux, dashboard.Options{
		Requests: s.Requests(), Breaches: s.Breaches(), SigningKey: []byte(s.Cfg.Secrets.SigningKey.Value()),
		Secure: strings.HasPrefix(s.Cfg.HTTP.PublicURL, "https:"), MaxFormBytes: s.Cfg.Limits.MaxFormBytes, Log: s.Log,
	})
}

// slackOptions are what the Slack app needs, over HTTP and Socket Mode alike.
func (s *Stack) slackOptions() slackapp.Options {
	return slackapp.Options{Requests: s.Requests(), Breaches: s.Breaches(), Store: s.Store, Tenants: s.Cfg.Tenants, APIURL: s.Cfg.Slack.APIURL, Log: s.Log}
}

// Handler is the process's HTTP surface: every entry of surfaces mounted on one mux. It needs All.
func (s *Stack) Handler() (http.Handler, error) {
	mux := http.NewServeMux()
	for _, mount := range surfaces {
		if err := mount(s, mux); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// Listen binds the HTTP address now, so a port in use fails the start with a clear line.
func Listen(addr string) (net.Listener, error) { return listen(addr, "http.addr") }

func listen(addr, setting string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.Setting(setting), err)
	}
	return l, nil
}

// ServeHealth answers /healthz, /readyz and /metrics on http.health_addr until ctx ends, for
// parts that have no HTTP surface of their own. It binds before returning, so a port in use
// stops the start; with no health_addr it does nothing.
func (s *Stack) ServeHealth(ctx context.Context) error {
	if s.Cfg.HTTP.HealthAddr == "" {
		return nil
	}
	l, err := listen(s.Cfg.HTTP.HealthAddr, "http.health_addr")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	if err := mountHealth(s, mux); err != nil {
		l.Close()
		return err
	}
	s.Log.Info("serving health", "addr", l.Addr().String())
	go func() {
		if err := Serve(ctx, l, mux); err != nil {
			s.Log.Error("health endpoint stopped", "err", err)
		}
	}()
	return nil
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
