package breaches_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/worker"
	"github.com/lethe-privacy/lethe/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A breach opened through the service runs on a real worker against the dev server, PostgreSQL
// and Kafka: a second opening is the same breach, the state shows the time left on each clock,
// the workflow's validators answer through the service, and the register keeps it once closed.
func TestOpenUpdateAndReadABreach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	prefix := "breaches-" + testenv.Suffix() + "."
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t), Partitions: 1, TopicPrefix: prefix, Logger: slog.Default()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureTopics(ctx, bus.TopicEvents))
	mg := mailgun.NewMockServer()
	t.Cleanup(mg.Stop)
	sender, err := mail.NewMailgun(mail.Config{Domain: "mg.salon.example", APIKey: "key-breaches", APIBase: mg.URL(), From: "privacy@mg.salon.example"})
	require.NoError(t, err)

	tenant := config.Tenant{ID: "salon", Name: "Salon Example", Country: "DE", DPOEmail: "dpo@salon.example",
		Breach: config.BreachFacts{Listed: true}}
	cfg := config.Defaults()
	cfg.Tenants = []config.Tenant{tenant, {ID: "studio", Country: "FR", DPOEmail: "dpo@studio.example"}}
	cfg.Temporal.TaskQueue = "breaches-" + testenv.Suffix()
	c := testenv.Temporal(t)
	w := worker.New(c, cfg.Temporal.TaskQueue, &activities.Activities{Store: st, Bus: b, Mail: sender,
		Tenants: map[string]config.Tenant{"salon": tenant}})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	now := time.Now()
	svc := &breaches.Service{Temporal: c, Store: st, Cfg: cfg}
	open := breaches.Opening{BreachID: "B-" + testenv.Suffix(), TenantID: "salon", Title: "Lost laptop", AwareAt: now.Add(-2 * time.Hour),
		Affected: []breachclock.Residents{{Jurisdiction: "DE", Count: 40}}, Content: &store.Art33{Nature: "Laptop stolen"}, OpenedBy: "dpo"}

	for _, bad := range []struct {
		change func(o *breaches.Opening)
		want   string
	}{
		{func(o *breaches.Opening) { o.TenantID = "salom" }, `unknown tenant "salom"`},
		{func(o *breaches.Opening) { o.Title = " " }, "title is required"},
		{func(o *breaches.Opening) { o.AwareAt = now.Add(time.Hour) }, "aware_at lies in the future"},
		{func(o *breaches.Opening) {
			o.Affected = []breachclock.Residents{{Jurisdiction: "california", Count: 1}}
		}, "affected[0].jurisdiction"},
		{func(o *breaches.Opening) { o.BreachID = "b/1" }, "id must be"},
	} {
		o := open
		bad.change(&o)
		_, err := svc.Open(ctx, o)
		assert.ErrorIs(t, err, breaches.ErrInvalid)
		assert.ErrorContains(t, err, bad.want)
	}

	id, err := svc.Open(ctx, open)
	require.NoError(t, err)
	again, err := svc.Open(ctx, open)
	assert.ErrorIs(t, err, breaches.ErrDuplicate)
	assert.Equal(t, id, again, "a duplicate open is one breach")

	state, err := svc.Get(ctx, "salon", id)
	require.NoError(t, err)
	var authority *workflows.BreachClock
	for i := range state.Clocks {
		if state.Clocks[i].Rule == "gdpr-art33-authority" {
			authority = &state.Clocks[i]
		}
	}
	require.NotNil(t, authority)
	require.NotNil(t, authority.RemainingSeconds)
	assert.InDelta(t, 70*3600, *authority.RemainingSeconds, 120, "70 hours left two hours after awareness")
	_, err = svc.Get(ctx, "studio", id)
	assert.ErrorIs(t, err, breaches.ErrNotFound, "another tenant's breach is not found")

	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachAssessment, workflows.BreachAssessment{Risk: "high", Actor: "dpo"})
	assert.ErrorIs(t, err, breaches.ErrRejected)
	assert.ErrorContains(t, err, "an assessment needs its rationale")
	state, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachAssessment, workflows.BreachAssessment{Risk: "none", Rationale: "encrypted disk", Actor: "dpo"})
	require.NoError(t, err)
	assert.Equal(t, "none", state.Risk)
	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachMateriality, workflows.BreachMateriality{Actor: "cfo"})
	require.NoError(t, err)
	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo", Reason: "not notifiable"})
	assert.ErrorContains(t, err, "clocks still run with nobody notified: sec-8k-item-105")
	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachNotification, workflows.BreachNotification{Rule: "sec-8k-item-105", Actor: "cfo", Reference: "8-K"})
	require.NoError(t, err)
	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo", Reason: "filed; not notifiable to the authority"})
	require.NoError(t, err)

	// The close returns once the workflow has recorded it in the register.
	state, err = svc.Get(ctx, "salon", id)
	require.NoError(t, err)
	assert.Equal(t, workflows.BreachClosed, state.Status)
	list, err := svc.List(ctx, "salon", "", 0)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, workflows.BreachClosed, list[0].Status)
	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachClose, workflows.Decision{Actor: "dpo", Reason: "again"})
	assert.True(t, errors.Is(err, breaches.ErrRejected), "%v", err)
	testenv.RecordHistory(t, c, id, "breach_assessed_filed_closed")
}
