// Package webhooks delivers lethe.events to tenants' webhook subscriptions: it reads each
// event, records one delivery per subscription that wants it in PostgreSQL (so retries survive
// a restart), POSTs each as the event's JSON signed with the subscription's secret
// (connectors/webhook.Sign), retries with exponential back-off and, after the last attempt,
// dead-letters it on lethe.dlq with the reason. It also serves the callbacks of webhook
// connector instances (callback.go).
package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/connectors/webhook"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

// Group is the consumer group of the delivery process on lethe.events.
const Group = "lethe-webhooks"

// Headers of every delivery besides webhook.SignatureHeader.
const (
	EventHeader    = "Lethe-Event"    // the event's type
	DeliveryHeader = "Lethe-Delivery" // the delivery's ID, the same on every attempt
)

// Deliverer delivers the events of every tenant's subscriptions.
type Deliverer struct {
	Bus     *bus.Bus
	Store   *store.Store
	Tenants []config.Tenant
	Cfg     config.Webhooks
	Log     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	client *http.Client
	wake   chan struct{}
}

// New checks every subscription's URL against the SSRF guard (resolving host names) and
// prepares the client, whose connections are checked again when they are made. An error names
// the setting.
func New(ctx context.Context, d Deliverer) (*Deliverer, error) {
	guard := webhook.Guard{AllowPrivate: d.Cfg.AllowPrivate}
	for _, t := range d.Tenants {
		for _, w := range t.Webhooks {
			if err := guard.CheckURL(ctx, w.URL); err != nil {
				return nil, fmt.Errorf("tenants[%s].webhooks[%s].url: %w", t.ID, w.Name, err)
			}
		}
	}
	d.client = guard.Client(d.Cfg.Timeout)
	d.wake = make(chan struct{}, 1)
	return &d, nil
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Run reads events and delivers them until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return d.Bus.Consume(ctx, bus.ConsumerOptions{Group: Group, Topic: bus.TopicEvents, Schemas: []string{schemas.Event, schemas.ConsentState}}, d.Handle)
	})
	g.Go(func() error { return d.loop(ctx) })
	return g.Wait()
}

// Handle records a delivery for each subscription of the event's tenant that wants it.
func (d *Deliverer) Handle(ctx context.Context, m bus.Message) error {
	if m.Schema == schemas.ConsentState {
		return nil // lethe.events also carries consent states, which no subscription takes
	}
	var ev bus.Event
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		return bus.Invalid(fmt.Errorf("decoding event: %w", err))
	}
	var ds []store.Delivery
	for _, t := range d.Tenants {
		if t.ID != ev.TenantID {
			continue
		}
		for _, w := range t.Webhooks {
			if !w.Wants(ev.Type) {
				continue
			}
			ds = append(ds, store.Delivery{
				ID: ev.ID + "/" + w.Name, TenantID: t.ID, Subscription: w.Name, EventID: ev.ID, EventType: ev.Type,
				RequestID: ev.RequestID, BreachID: ev.BreachID, Body: m.Value, Partition: m.Partition, Offset: m.Offset,
				CreatedAt: d.now(),
			})
		}
	}
	if len(ds) == 0 {
		return nil
	}
	if err := d.Store.Webhooks().Enqueue(ctx, ds); err != nil {
		return err
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return nil
}

// loop delivers what is due, at once when an event was recorded and every Poll otherwise.
func (d *Deliverer) loop(ctx context.Context) error {
	t := time.NewTicker(d.Cfg.Poll)
	defer t.Stop()
	for {
		for {
			n, err := d.DeliverDue(ctx)
			if err != nil && ctx.Err() == nil {
				d.Log.Error("delivering webhooks", "err", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.wake:
		}
	}
}

// batch is how many deliveries one pass claims.
const batch = 20

// DeliverDue makes one attempt at each delivery that is due, up to a batch, and reports how
// many it tried.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	// The lease outlasts one attempt, so a delivery is tried by one process at a time.
	due, err := d.Store.Webhooks().Claim(ctx, d.now(), 2*d.Cfg.Timeout+time.Minute, batch)
	if err != nil {
		return 0, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, del := range due {
		g.Go(func() error { return d.attempt(gctx, del) })
	}
	return len(due), g.Wait()
}

// attempt POSTs one delivery and records the outcome: delivered, due again after the back-off,
// or dead-lettered after the last attempt.
func (d *Deliverer) attempt(ctx context.Context, del store.Delivery) error {
	w, ok := d.subscription(del.TenantID, del.Subscription)
	if !ok {
		return d.finish(ctx, del, 0, "the subscription is no longer configured")
	}
	status, err := d.post(ctx, w, del)
	if ctx.Err() != nil {
		return nil // shutting down: the lease runs out and the attempt is made again
	}
	if err == nil {
		d.Log.Info("webhook delivered", "tenant_id", del.TenantID, "subscription", del.Subscription, "delivery_id", del.ID, "status", status)
		return d.Store.Webhooks().Record(ctx, del, store.Attempt{At: d.now(), Status: status})
	}
	reason := err.Error()
	if del.Attempts+1 >= d.Cfg.MaxAttempts {
		return d.finish(ctx, del, status, fmt.Sprintf("webhook %s gave up after %d attempts: %s", del.Subscription, del.Attempts+1, reason))
	}
	next := d.now().Add(Backoff(d.Cfg, del.Attempts+1))
	d.Log.Warn("webhook attempt failed; retrying", "tenant_id", del.TenantID, "subscription", del.Subscription,
		"delivery_id", del.ID, "attempt", del.Attempts+1, "next_attempt_at", next, "error", reason)
	return d.Store.Webhooks().Record(ctx, del, store.Attempt{At: d.now(), Status: status, Error: reason, Next: next})
}

// Backoff is the wait after the n-th failed attempt: Backoff doubled n-1 times, at most MaxBackoff.
func Backoff(cfg config.Webhooks, n int) time.Duration {
	b := cfg.Backoff
	for i := 1; i < n && b < cfg.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, cfg.MaxBackoff)
}

// finish dead-letters a delivery: first on lethe.dlq, then in its row and the audit trail, so
// a crash between the two repeats the dead letter rather than losing it.
func (d *Deliverer) finish(ctx context.Context, del store.Delivery, status int, reason string) error {
	body := string(del.Body)
	dl := protocol.DeadLetter{
		Schema: schemas.DLQ, Version: schemas.Version, Reason: reason[:min(len(reason), 1000)],
		SourceTopic: d.Bus.Topic(bus.TopicEvents), Partition: del.Partition, Offset: del.Offset, Key: del.ID,
		Value: &body, FailedAt: d.now().UTC(),
	}
	if err := d.Bus.Publish(ctx, bus.TopicDLQ, del.ID, dl); err != nil {
		return fmt.Errorf("dead-lettering webhook delivery %s: %w", del.ID, err)
	}
	d.Log.Error("webhook dead-lettered", "tenant_id", del.TenantID, "subscription", del.Subscription, "delivery_id", del.ID, "reason", reason)
	return d.Store.Webhooks().Record(ctx, del, store.Attempt{At: d.now(), Status: status, Error: reason})
}

func (d *Deliverer) subscription(tenant, name string) (config.Webhook, bool) {
	for _, t := range d.Tenants {
		if t.ID != tenant {
			continue
		}
		for _, w := range t.Webhooks {
			if w.Name == name {
				return w, true
			}
		}
	}
	return config.Webhook{}, false
}

// post sends the delivery once; any answer but 2xx is a failure. Errors name the status or the
// network failure, never the URL's path or the body.
func (d *Deliverer) post(ctx context.Context, w config.Webhook, del store.Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(del.Body))
	if err != nil {
		return 0, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Lethe-Webhooks/1")
	req.Header.Set(EventHeader, del.EventType)
	req.Header.Set(DeliveryHeader, del.ID)
	req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(w.Secret.Value()), d.now(), del.Body))
	res, err := d.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST to %s: %w", req.URL.Host, unwrapURL(err))
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, fmt.Errorf("POST to %s answered %s", req.URL.Host, strconv.Itoa(res.StatusCode))
	}
	return res.StatusCode, nil
}
