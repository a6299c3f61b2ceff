package app

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/bridge"
	"github.com/lethe-privacy/lethe/internal/consent"
	"github.com/lethe-privacy/lethe/internal/intake"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/runner"
	"github.com/lethe-privacy/lethe/internal/slackapp"
	"github.com/lethe-privacy/lethe/internal/webhooks"
	"github.com/lethe-privacy/lethe/worker"
)

// Part is one long-running part of a Lethe process (the worker, a Kafka consumer, the HTTP
// server), run until its context ends.
type Part struct {
	Name string
	Run  func(context.Context) error
}

// RunParts runs every part until ctx ends or one fails, which stops the others.
func RunParts(ctx context.Context, parts ...Part) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error { return p.Run(ctx) })
	}
	return g.Wait()
}

// Parts are the worker, the bridge's consumers and a runner for each connector instance this
// binary serves: everything but HTTP, for a stack that runs all of Lethe in one process
// (lethe dev, the test harness).
func (s *Stack) Parts() []Part {
	parts := []Part{{"worker", s.RunWorker}}
	parts = append(parts, s.bridgeConsumers()...)
	for _, in := range s.Cfg.Connectors {
		if !in.Remote() {
			parts = append(parts, Part{"connector " + in.Name, func(ctx context.Context) error { return s.RunConnector(ctx, in.Name) }})
		}
	}
	return parts
}

// RunWorker polls the task queue until ctx ends, reconciling closed workflows meanwhile.
func (s *Stack) RunWorker(ctx context.Context) error {
	if s.Cfg.AnySlack() {
		if err := worker.EnsureDigestSchedule(ctx, s.Temporal, s.Cfg.Temporal.TaskQueue); err != nil {
			return err
		}
	}
	for _, t := range s.Cfg.Tenants {
		if t.Retention != nil {
			if err := worker.EnsureRetentionSchedule(ctx, s.Temporal, s.Cfg.Temporal.TaskQueue, t.ID, t.Retention.RunHour()); err != nil {
				return err
			}
		}
	}
	w := worker.New(s.Temporal, s.Cfg.Temporal.TaskQueue, s.Activities())
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the Temporal worker on task queue %s: %w", s.Cfg.Temporal.TaskQueue, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.reconcileEvery(ctx, ReconcileEvery)
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
func (s *Stack) reconcileEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error("reconciling closed workflows", "err", err)
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
func (s *Stack) Reconcile(ctx context.Context) ([]requests.Closure, error) {
	rec := &activities.Activities{Store: s.Store, Bus: s.Bus}
	closed, err := s.Requests().Reconcile(ctx, rec.RecordTransition)
	for _, c := range closed {
		s.Log.Warn("request's workflow closed in Temporal; recorded as failed", "request_id", c.RequestID, "tenant_id", c.TenantID, "close_status", c.CloseStatus)
	}
	return closed, err
}

// bridgeConsumers are the Kafka consumers that turn messages into Temporal calls: connector
// results complete fan-out activities; intake messages and consent changes start requests;
// the consent relay publishes each recorded consent change's lethe.consent.state;
// a Socket Mode tenant's Slack interactions decide requests. A new consumer of the bridge
// process is one more entry.
func (s *Stack) bridgeConsumers() []Part {
	return append(append(s.slackSockets(), s.webhookDeliveries()...), []Part{
		{"bridge", (&bridge.Bridge{Bus: s.Bus, Store: s.Store, Temporal: s.Temporal, Log: s.Log}).Run},
		{"intake", (&intake.Intake{Bus: s.Bus, Requests: s.Limited(), Breaches: s.Breaches(), Store: s.Store, SigningKey: s.Cfg.Secrets.SigningKey.Value(), Log: s.Log}).Run},
		{"consent relay", (&consent.Relay{Store: s.Store, Bus: s.Bus, Log: s.Log}).Run},
	}...)
}

// webhookDeliveries deliver lethe.events to the tenants' webhook subscriptions, when any has one.
func (s *Stack) webhookDeliveries() []Part {
	if !s.Cfg.AnyWebhooks() {
		return nil
	}
	return []Part{{"webhooks", func(ctx context.Context) error {
		d, err := webhooks.New(ctx, webhooks.Deliverer{Bus: s.Bus, Store: s.Store, Tenants: s.Cfg.Tenants, Cfg: s.Cfg.Webhooks, Log: s.Log})
		if err != nil {
			return err
		}
		return d.Run(ctx)
	}}}
}

// slackSockets receive the interactions of each tenant whose Slack app is in Socket Mode.
func (s *Stack) slackSockets() []Part {
	var parts []Part
	for _, t := range s.Cfg.Tenants {
		if t.Slack != nil && t.Slack.Socket() {
			parts = append(parts, Part{"slack socket " + t.ID, func(ctx context.Context) error { return slackapp.RunSocket(ctx, s.slackOptions(), t) }})
		}
	}
	return parts
}

// RunBridge runs the bridge process's consumers until ctx ends or one fails.
func (s *Stack) RunBridge(ctx context.Context) error {
	return RunParts(ctx, s.bridgeConsumers()...)
}

// RunConnector serves one configured connector instance over Kafka until ctx ends.
func (s *Stack) RunConnector(ctx context.Context, name string) error {
	r, err := s.Runner(name)
	if err != nil {
		return err
	}
	defer r.Connector.Close()
	// Every command topic, not only this one: a runner is often the first process of a
	// deployment to start, and a remote connector's topic has no runner of Lethe's to make it.
	if err := s.EnsureTopics(ctx); err != nil {
		return err
	}
	s.Log.Info("serving connector", "connector", name, "type", r.Connector.Name())
	return r.Run(ctx)
}

// Runner opens the connector instance name and its runner over the stack; the caller closes
// r.Connector.
func (s *Stack) Runner(name string) (*runner.Runner, error) {
	in, err := s.Cfg.Served(name)
	if err != nil {
		return nil, err
	}
	at := "connectors[" + name + "]"
	raw, err := in.ConfigYAML()
	if err != nil {
		return nil, fmt.Errorf("%s.config: %w", at, err)
	}
	c, err := connectors.Open(in.Type, raw)
	if err != nil {
		return nil, fmt.Errorf("%s.config: %w", at, err)
	}
	ring, err := s.Keys.Ring(name)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return &runner.Runner{Connector: c, Name: name, Keys: ring, Bus: s.Bus, Store: s.Store, Exports: s.Exports, Log: s.Log, Metrics: s.Metrics}, nil // the runner names the connector in each line
}
