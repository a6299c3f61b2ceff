package e2e_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/intake"
	"github.com/lethe-privacy/lethe/internal/runner"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/schemas"
)

// newsletter is a marketing system's connector that can only notify; it keeps what it sent.
type newsletter struct {
	mu   sync.Mutex
	sent []string // subjects' email addresses
}

func (n *newsletter) Name() string                { return "newsletter" }
func (n *newsletter) Check(context.Context) error { return nil }
func (n *newsletter) Close() error                { return nil }
func (n *newsletter) Notify(_ context.Context, t connectors.Task) (connectors.NotifyResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, t.Subject.Email)
	return connectors.NotifyResult{Channel: connectors.ChannelEmail, MessageID: "m-" + t.Key}, nil
}

func (n *newsletter) sentTo() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.sent...)
}

// notifyThrough dispatches one notify as Lethe's workflows dispatch every connector command.
func notifyThrough(ctx workflow.Context, d activities.Dispatch) (domain.Output, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var out domain.Output
	err := workflow.ExecuteActivity(ctx, "DispatchCommand", d).Get(ctx, &out)
	return out, err
}

// A marketing instance (consent_purpose: marketing_email) is asked to notify two subjects on the
// whole stack: the one who withdrew consent over Kafka is refused before any command is sent,
// and the audit trail records the refusal; the one who granted it is notified by the runner.
func TestMarketingNotifyNeedsCurrentConsent(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "consent", Instances: `
  - name: newsletter
    type: remote
    tenants: ["*"]
    consent_purpose: marketing_email
    config: {capabilities: [notify]}`,
		Config: "secrets: {connector_keys: {newsletter: [{id: k1, env: NEWSLETTER_KEY}]}}\n",
		Env:    map[string]string{"NEWSLETTER_KEY": "bmV3c2xldHRlci1rZXktMDEyMzQ1Njc4OWFiY2RlZjA="}}), t: t}
	s.RunAll()
	conn := &newsletter{}
	ring, err := s.Deps.Keys.Ring("newsletter")
	require.NoError(t, err)
	s.Run("connector newsletter", (&runner.Runner{Connector: conn, Name: "newsletter", Keys: ring, Bus: s.Deps.Bus, Store: s.Deps.Store, Exports: s.Deps.Exports, Log: s.Log}).Run)
	queue := "consent-notify-" + testenv.Suffix()
	w := sdkworker.New(s.Deps.Temporal, queue, sdkworker.Options{})
	w.RegisterWorkflow(notifyThrough)
	w.RegisterActivity(s.Deps.Activities())
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	ctx := context.Background()
	key := s.Env["LETHE_SIGNING_KEY"]
	withdrew, granted := "withdrew-"+testenv.Suffix()+"@example.com", "granted-"+testenv.Suffix()+"@example.com"
	now := time.Now().UTC().Truncate(time.Second)
	change := func(addr string, ok bool, at time.Time) {
		require.NoError(t, s.Deps.Bus.Publish(ctx, bus.TopicConsent, addr, map[string]any{
			"schema": schemas.ConsentChange, "version": 1, "tenant_id": "salon", "subject": map[string]any{"email": addr},
			"purpose": "marketing_email", "granted": ok, "changed_at": at, "source": "signup_form",
		}))
	}
	change(withdrew, true, now.Add(-2*time.Hour))
	change(withdrew, false, now.Add(-time.Hour))
	change(granted, false, now.Add(-2*time.Hour))
	change(granted, true, now.Add(-time.Hour)) // withdrawn, then granted again

	// The withdrawal starts an objection, which names the subject; the other subject asks for
	// access. Each request is what the notify is about.
	withdrewRef := crypto.SubjectHash(key, "salon", withdrew, "", "")
	objection := intake.ObjectionID(intake.ConsentKey("salon", withdrewRef, "marketing_email", false, now.Add(-time.Hour)))
	access := s.Submit(domain.TypeAccess, connectors.Subject{Email: granted})
	grantedRef := crypto.SubjectHash(key, "salon", granted, "", "")
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := s.Deps.Store.Consent().State(ctx, "salon", grantedRef, "marketing_email")
		require.NoError(t, err)
		h, err := s.Deps.Store.Consent().History(ctx, "salon", grantedRef)
		require.NoError(t, err)
		_, started := s.Deps.Temporal.DescribeWorkflowExecution(ctx, objection, "")
		// Its own early withdrawal started an objection too, whose entry may come before or
		// after: only the two changes published here are waited for.
		published := 0
		for _, c := range h {
			if c.Source == "signup_form" {
				published++
			}
		}
		if st.Granted && published == 2 && started == nil {
			break
		}
		require.False(t, time.Now().After(deadline), "the changes never reached the ledger: granted %v, %d changes %+v, objection started: %v", st.Granted, len(h), h, started)
		time.Sleep(50 * time.Millisecond) // polling what the intake consumer writes and starts
	}
	require.Equal(t, domain.StatusCompleted, s.Await(objection).Status)

	notify := func(requestID string) (domain.Output, error) {
		run, err := s.Deps.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: requestID + "-notify", TaskQueue: queue}, notifyThrough, activities.Dispatch{
			RequestID: requestID, TenantID: "salon", Connector: "newsletter", Action: "notify",
			IdempotencyKey: requestID + ":newsletter:notify", Params: map[string]any{"channel": "email", "subject": "Spring offers", "body": "Ten per cent off colour."},
		})
		require.NoError(t, err)
		var out domain.Output
		err = run.Get(ctx, &out)
		return out, err
	}

	_, err = notify(objection)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "the notify is refused: %v", err)
	assert.Equal(t, activities.ErrConsentRefused, ae.Type())
	assert.NotContains(t, err.Error(), withdrew)
	events, err := s.Deps.Store.Audit().List(ctx, store.AuditFilter{TenantID: "salon", Action: "connector.notify_refused", SubjectRef: withdrewRef})
	require.NoError(t, err)
	require.Len(t, events, 1, "the refusal is audited once, with the subject's reference")
	assert.Equal(t, objection, events[0].RequestID)
	assert.Equal(t, "newsletter", events[0].Detail["connector"])
	assert.Equal(t, "marketing_email", events[0].Detail["purpose"])
	assert.Equal(t, "withdrawn", events[0].Detail["state"])
	assert.NotContains(t, strings.Join(conn.sentTo(), ","), withdrew, "no command reached the marketing system")

	_, err = notify(access)
	require.NoError(t, err, "a subject who granted consent is notified")
	assert.Equal(t, []string{granted}, conn.sentTo())
}
