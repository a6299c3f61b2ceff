package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mailchimpstandin"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/internal/webhooks"
)

// vendorCheck is one system the demo salon feeds besides its database: how the test stack
// starts its stand-in and connector instance, and how the test asks the stand-in, as the
// vendor's API would answer, whether it still holds the customer. A new vendor is one row.
type vendorCheck struct {
	connector string // the connector instance, as the audit trail names it
	enable    func(o *teststack.Options)
	held      func(t *testing.T, s *stack, subject connectors.Subject) bool
}

var vendorChecks = []vendorCheck{
	{connector: "mailchimp", enable: func(o *teststack.Options) { o.Mailchimp = true }, held: mailchimpHolds},
	{connector: "sms", enable: func(o *teststack.Options) { o.SMS = true }, held: twilioHolds},
}

// mailchimpHolds asks the member endpoint of the salon's audience: 200 while the member is
// there, 404 Resource Not Found once deleted permanently.
func mailchimpHolds(t *testing.T, s *stack, subject connectors.Subject) bool {
	t.Helper()
	email := subject.Email
	req, err := http.NewRequest(http.MethodGet, s.Mailchimp.URL()+"/lists/"+demo.MailchimpAudience+"/members/"+mailchimpstandin.Hash(email), nil)
	require.NoError(t, err)
	req.SetBasicAuth("e2e", teststack.MailchimpKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct{ Title, Status any }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	switch resp.StatusCode {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		require.Equal(t, "Resource Not Found", body.Title)
		require.True(t, s.Mailchimp.Forgotten(demo.MailchimpAudience, email), "the member was archived, not deleted permanently")
		return false
	}
	t.Fatalf("mailchimp member endpoint answered %d %v", resp.StatusCode, body.Title)
	return false
}

// An erasure on the whole stack reaches every vendor the salon feeds: afterwards none holds
// the customer, and the request's audit trail lists each connector's step. The salon's webhook
// subscription receives the request's completion signed, and the trail lists that delivery.
func TestErasureReachesEveryVendorEndToEnd(t *testing.T) {
	o := teststack.Options{Name: "e2e-vendors", Webhooks: true}
	for _, v := range vendorChecks {
		v.enable(&o)
	}
	s := &stack{Stack: teststack.New(t, o), t: t}
	s.RunAll()
	subject := connectors.Subject{Email: demo.ClearCustomerEmail, Phone: demo.ClearCustomerPhone}
	for _, v := range vendorChecks {
		require.True(t, v.held(t, s, subject), "%s holds the demo customer before the erasure", v.connector)
	}

	id := s.Submit(domain.TypeErasure, subject)
	st := s.Await(id)
	require.Equal(t, domain.StatusCompleted, st.Status, "connectors: %+v", st.Connectors)

	events, err := s.Deps.Store.Audit().List(context.Background(), store.AuditFilter{RequestID: id, Limit: 1000})
	require.NoError(t, err)
	steps := map[string]store.Event{}
	completedAt := int64(0)
	for _, e := range events {
		if e.Action == "connector.succeeded" && e.Detail["action"] == "erase" {
			steps[e.Detail["connector"].(string)] = e
		}
		if e.Action == "request.completed" {
			completedAt = e.ID
		}
	}
	for _, v := range vendorChecks {
		t.Run(v.connector, func(t *testing.T) {
			assert.False(t, v.held(t, s, subject), "%s still holds the customer after the erasure", v.connector)
			step, ok := steps[v.connector]
			require.True(t, ok, "the audit trail has no erase step of %s: %v", v.connector, actions(events))
			assert.Equal(t, "connector "+v.connector, step.Actor)
			assert.Less(t, step.ID, completedAt, "the step is recorded before the request completes")
		})
	}
	assert.Contains(t, steps, "database", "the database's own step is listed too")

	t.Run("webhook", func(t *testing.T) {
		delivered := webhookDelivered(t, s, id, "request.completed")
		ts, sig, ok := strings.Cut(strings.TrimPrefix(delivered.Signature, "t="), ",v1=")
		require.True(t, ok, "Lethe-Signature %q", delivered.Signature)
		assert.Equal(t, testenv.OpenSSLHMAC(t, teststack.WebhookSecret, ts+"."+string(delivered.Body)), sig, "OpenSSL verifies the signature")
		assert.NotContains(t, string(delivered.Body), subject.Email, "the event names no one")
		assert.NotContains(t, string(delivered.Body), subject.Phone, "the event names no one")
		require.Eventually(t, func() bool {
			events, err := s.Deps.Store.Audit().List(context.Background(), store.AuditFilter{RequestID: id, Action: "webhook.delivered", Limit: 100})
			require.NoError(t, err)
			for _, e := range events {
				if e.Detail["event_type"] == "request.completed" && e.Detail["subscription"] == "inbox" {
					return true
				}
			}
			return false
		}, 2*time.Minute, 50*time.Millisecond, "the audit trail lists the webhook delivery of the completion")
	})
}

// webhookDelivered waits for the subscription's verified delivery of the request's event.
func webhookDelivered(t *testing.T, s *stack, id, typ string) webhooks.Received {
	t.Helper()
	var got webhooks.Received
	require.Eventually(t, func() bool {
		for _, r := range s.Inbox.Received() {
			if r.RequestID == id && r.Event == typ && r.Verified {
				got = r
				return true
			}
		}
		return false
	}, 2*time.Minute, 50*time.Millisecond, "no verified %s delivery of %s reached the webhook receiver", typ, id)
	return got
}

// twilioHolds lists the account's messages to and from the customer's number, as Twilio's
// Messages API answers: the salon's booking reminders until they are deleted.
func twilioHolds(t *testing.T, s *stack, subject connectors.Subject) bool {
	t.Helper()
	n := 0
	for _, filter := range []string{"To", "From"} {
		req, err := http.NewRequest(http.MethodGet, s.Twilio.URL()+"/2010-04-01/Accounts/"+teststack.TwilioAccount+"/Messages.json?"+filter+"="+url.QueryEscape(subject.Phone), nil)
		require.NoError(t, err)
		req.SetBasicAuth(teststack.TwilioAccount, teststack.TwilioToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var page struct{ Messages []map[string]any }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "twilio's message list")
		n += len(page.Messages)
	}
	return n > 0
}

func actions(events []store.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[len(events)-1-i] = e.Action
	}
	return out
}

// An objection on the whole stack unsubscribes the customer from the marketing list before
// the request completes, and keeps them on it: nothing is deleted.
func TestObjectionUnsubscribesFromMailchimpEndToEnd(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e-objection", Mailchimp: true}), t: t}
	s.RunAll()
	email := demo.HealthNotesCustomerEmail
	before, ok := s.Mailchimp.Member(demo.MailchimpAudience, email)
	require.True(t, ok)
	require.Equal(t, "subscribed", before.Status)

	st := s.Await(s.Submit(domain.TypeObjection, connectors.Subject{Email: email}))
	require.Equal(t, domain.StatusCompleted, st.Status, "connectors: %+v", st.Connectors)
	after, ok := s.Mailchimp.Member(demo.MailchimpAudience, email)
	require.True(t, ok, "an objection keeps the member")
	assert.Equal(t, "unsubscribed", after.Status)
}
