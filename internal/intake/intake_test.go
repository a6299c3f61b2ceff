package intake_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/intake"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/workflows"
)

// input reads the workflow input a request was started with, from its history.
func (s *stack) input(id string) workflows.RequestInput {
	s.t.Helper()
	it := s.Deps.Temporal.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	require.True(s.t, it.HasNext(), "no history for %s", id)
	first, err := it.Next()
	require.NoError(s.t, err)
	var in workflows.RequestInput
	require.NoError(s.t, converter.GetDefaultDataConverter().FromPayloads(first.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in))
	return in
}

// The same request_id twice is one request and one workflow, also after Temporal has forgotten
// the workflow: the requests table remembers it.
func TestDuplicateRequestIsOneRequest(t *testing.T) {
	s := newStack(t)
	s.Run("intake", s.intake(nil).RunRequests)
	id := "kafka-" + testenv.Suffix()
	msg := newIntake(id, "salon", domain.TypeAccess, demo.ClearCustomerEmail)
	s.publish(bus.TopicIntake, msg)
	s.publish(bus.TopicIntake, msg)
	s.waitCommitted(intake.GroupRequests, bus.TopicIntake, 2)

	assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests WHERE id = $1`, id))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests`), "no second request under another id")
	require.True(t, s.workflowExists(id))
	in := s.input(id)
	assert.Equal(t, intake.Channel, in.Channel)
	assert.False(t, in.IdentityVerified, "a Kafka request still needs the subject to verify")

	// Temporal forgets the workflow (as after its retention period); the id stays taken.
	_, err := s.Deps.Temporal.WorkflowService().DeleteWorkflowExecution(context.Background(), &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace: s.Cfg.Temporal.Namespace, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id},
	})
	require.NoError(t, err)
	eventually(t, 60*time.Second, func() bool { return !s.workflowExists(id) }, "Temporal never forgot workflow %s", id)
	s.publish(bus.TopicIntake, msg)
	s.waitCommitted(intake.GroupRequests, bus.TopicIntake, 3)
	assert.False(t, s.workflowExists(id), "a forgotten request was started again")
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests`))
	assert.Equal(t, 0, s.count(`SELECT count(*) FROM (SELECT 1 FROM requests WHERE NOT started) x`))
}

// Anything that can never become a request goes to lethe.dlq with a reason that names the
// problem but not the subject; consumption goes on past it.
func TestInvalidMessagesAreDeadLettered(t *testing.T) {
	s := newStack(t)
	in := s.intake(nil)
	s.Run("requests", in.RunRequests)
	s.Run("consent", in.RunConsent)
	email := demo.ClearCustomerEmail

	taken := "taken-" + testenv.Suffix()
	s.publish(bus.TopicIntake, newIntake(taken, "salon", domain.TypeAccess, email))
	s.publishRaw(bus.TopicIntake, []byte(`{"schema":"lethe.request.intake","version":1,"subject":`))
	s.publish(bus.TopicIntake, bus.Event{Schema: "lethe.event", Version: 1, ID: "e1", Type: "request.status_changed",
		TenantID: "salon", RequestID: "r1", Status: "received", OccurredAt: time.Now().UTC()})
	noSubject, _ := json.Marshal(map[string]any{"schema": "lethe.request.intake", "version": 1, "tenant_id": "salon", "type": "access"})
	s.publishRaw(bus.TopicIntake, noSubject)
	s.publish(bus.TopicIntake, newIntake("", "nosuchtenant", domain.TypeAccess, email))
	future := time.Now().Add(48 * time.Hour).UTC()
	late := newIntake("", "salon", domain.TypeAccess, email)
	late.ReceivedAt = &future
	s.publish(bus.TopicIntake, late)
	changes := newIntake("", "salon", domain.TypeErasure, email)
	changes.Changes = map[string]string{"last_name": "Lovelace"}
	s.publish(bus.TopicIntake, changes)
	numeric, _ := json.Marshal(map[string]any{"schema": "lethe.request.intake", "version": 1, "tenant_id": "salon",
		"type": "rectification", "subject": map[string]string{"email": email}, "changes": map[string]any{"house_number": 12}})
	s.publishRaw(bus.TopicIntake, numeric)
	noCalendar := newIntake("", "salon", domain.TypeAccess, email)
	noCalendar.Country = "ZZ"
	s.publish(bus.TopicIntake, noCalendar)
	s.publish(bus.TopicIntake, newIntake(taken, "spa", domain.TypeErasure, email))
	good := "good-" + testenv.Suffix()
	s.publish(bus.TopicIntake, newIntake(good, "spa", domain.TypeErasure, email))

	s.publish(bus.TopicConsent, newConsent("nosuchtenant", email, "marketing_email", false, time.Now().UTC()))
	s.publish(bus.TopicConsent, newConsent("salon", email, "marketing_email", true, time.Now().UTC()))

	s.waitCommitted(intake.GroupRequests, bus.TopicIntake, 11)
	s.waitCommitted(intake.GroupConsent, bus.TopicConsent, 2)
	assert.Equal(t, 2, s.count(`SELECT count(*) FROM requests`), "only the two valid requests exist")
	assert.Equal(t, "salon", scalar(t, s, `SELECT tenant_id FROM requests WHERE id = $1`, taken), "another tenant's id left untouched")
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests WHERE id = $1 AND tenant_id = 'spa'`, good))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM consent_ledger`), "only the known tenant's consent change is recorded")

	want := []string{
		"not valid JSON",
		"schema lethe.event is not accepted",
		"subject",
		"unknown tenant",
		"received_at is in the future",
		"changes only belong to a rectification",
		"/changes/house_number: must be string",
		"country must be one of AT, BE,",
		"request_id is already used by another tenant's request",
	}
	dls := s.deadLetters(bus.TopicIntake, len(want))
	for i, w := range want {
		assert.Contains(t, dls[i].Reason, w, "dead letter %d", i)
		assert.NotContains(t, dls[i].Reason, email, "dead letter %d reason names the subject", i)
		assert.NotNil(t, dls[i].Value, "dead letter %d keeps the original message", i)
	}
	consent := s.deadLetters(bus.TopicConsent, 1)
	assert.Contains(t, consent[0].Reason, "unknown tenant")
}

// A message is committed only after its request started: while Temporal or PostgreSQL is down
// the intake retries and commits nothing, and after recovery the request starts once.
func TestCommitOnlyAfterStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		broken func(s *stack) *requests.Service
		// halfway reports whether the request row is written before the start fails.
		halfway bool
	}{
		{"temporal unavailable", func(s *stack) *requests.Service {
			svc := s.Deps.Requests()
			svc.Temporal = temporalDown{Client: svc.Temporal, calls: &atomic.Int64{}}
			return svc
		}, true},
		{"postgres closed", func(s *stack) *requests.Service {
			st, err := store.Open(context.Background(), s.Env["DATABASE_URL"], 2)
			require.NoError(t, err)
			st.Close()
			svc := s.Deps.Requests()
			svc.Store = st
			return svc
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			id := "outage-" + testenv.Suffix()
			s.publish(bus.TopicIntake, newIntake(id, "salon", domain.TypeAccess, demo.ClearCustomerEmail))

			stop := s.Run("broken intake", s.intake(tc.broken(s)).RunRequests)
			eventually(t, 60*time.Second, func() bool {
				return s.retries.Load() >= 2 || s.committed(intake.GroupRequests, bus.TopicIntake) >= 1
			}, "the failing start was neither retried nor committed")
			assert.Less(t, s.committed(intake.GroupRequests, bus.TopicIntake), int64(1), "committed before the start succeeded")
			stop()
			assert.Less(t, s.committed(intake.GroupRequests, bus.TopicIntake), int64(1), "committed on shutdown")
			assert.Equal(t, 0, s.count(`SELECT count(*) FROM requests WHERE started`))
			if tc.halfway {
				assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests WHERE id = $1`, id), "the row written before the start failed")
			}
			assert.False(t, s.workflowExists(id))

			s.Run("recovered intake", s.intake(nil).RunRequests)
			s.waitCommitted(intake.GroupRequests, bus.TopicIntake, 1)
			assert.True(t, s.workflowExists(id))
			assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests WHERE id = $1 AND started`, id))
			assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests`))
			assert.Equal(t, 0, len(deadLettersNow(t, s)), "an outage never dead-letters a request")
		})
	}
}

// A withdrawal of marketing consent is recorded once and starts one objection, which stops
// marketing in the connected systems; the same change delivered twice changes nothing more.
func TestMarketingWithdrawalStartsOneObjection(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	in := s.intake(nil)
	s.Run("consent", in.RunConsent)
	ctx := context.Background()
	email := demo.ClearCustomerEmail
	_, err := s.Demo.Exec(ctx, `UPDATE marketing_consents SET granted = true WHERE customer_id = (SELECT id FROM customers WHERE email = $1)`, email)
	require.NoError(t, err)

	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	withdrawal := newConsent("salon", email, "marketing_email", false, at)
	s.publish(bus.TopicConsent, withdrawal)
	s.publish(bus.TopicConsent, withdrawal) // a producer that retried
	s.publish(bus.TopicConsent, newConsent("salon", email, "marketing_sms", true, at))
	s.publish(bus.TopicConsent, newConsent("salon", email, "profiling", false, at))
	s.waitCommitted(intake.GroupConsent, bus.TopicConsent, 4)

	hash := crypto.SubjectHash(signingKey, "salon", email, "", "")
	assert.Equal(t, 3, s.count(`SELECT count(*) FROM consent_ledger WHERE source = 'mailchimp' AND subject_hash = $1`, hash))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM consent_ledger WHERE source = 'mailchimp' AND purpose = 'marketing_email' AND NOT granted AND changed_at = $1`, at))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests WHERE type = 'objection'`), "one withdrawal, one objection")
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests`), "a grant or a non-marketing withdrawal starts nothing")

	id := intake.ObjectionID(intake.ConsentKey("salon", hash, "marketing_email", false, at))
	require.Equal(t, 1, s.count(`SELECT count(*) FROM requests WHERE id = $1 AND tenant_id = 'salon' AND received_at = $2`, id, at))
	obj := s.input(id)
	assert.True(t, obj.IdentityVerified, "the source system vouched for the subject")
	assert.Equal(t, intake.Channel, obj.Channel)

	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var st domain.RequestState
	require.NoError(t, s.Deps.Temporal.GetWorkflow(wctx, id, "").Get(wctx, &st))
	assert.Equal(t, domain.StatusCompleted, st.Status)
	var granted int
	require.NoError(t, s.Demo.QueryRow(ctx, `SELECT count(*) FROM marketing_consents m JOIN customers c ON c.id = m.customer_id WHERE c.email = $1 AND m.granted`, email).Scan(&granted))
	assert.Equal(t, 0, granted, "marketing stopped in the salon's database")

	// Redelivery of the very same record after the objection finished: nothing new.
	raw, err := json.Marshal(withdrawal)
	require.NoError(t, err)
	require.NoError(t, in.HandleConsent(ctx, bus.Message{Topic: s.Prefix + bus.TopicConsent, Value: raw, Schema: "lethe.consent.change"}))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests`))
	assert.Equal(t, 3, s.count(`SELECT count(*) FROM consent_ledger WHERE source = 'mailchimp'`))
}

// The sender's received_at, channel, regime, country and corrected values reach the request.
func TestRequestFieldsAreKept(t *testing.T) {
	s := newStack(t)
	in := s.intake(nil)
	ctx := context.Background()
	received := time.Date(2026, 1, 5, 9, 30, 0, 0, time.UTC)
	msg := newIntake("post-"+testenv.Suffix(), "salon", domain.TypeRectification, demo.ClearCustomerEmail)
	msg.ReceivedAt, msg.Channel, msg.Regime, msg.Country = &received, "post", "ccpa", "US"
	msg.Changes = map[string]string{"last_name": "Lovelace"}
	raw, err := json.Marshal(msg)
	require.NoError(t, err)
	require.NoError(t, in.HandleRequest(ctx, bus.Message{Topic: s.Prefix + bus.TopicIntake, Value: raw}))

	var regime, country, lastName string
	var at time.Time
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `
		SELECT r.regime, r.country, r.received_at, s.changes->>'last_name'
		FROM requests r JOIN request_subjects s ON s.request_id = r.id WHERE r.id = $1`, msg.RequestID).
		Scan(&regime, &country, &at, &lastName))
	assert.Equal(t, []string{"ccpa", "US", "Lovelace"}, []string{regime, country, lastName})
	assert.True(t, received.Equal(at), "received_at %v, want %v", at, received)
	assert.Equal(t, "post", s.input(msg.RequestID).Channel)

	// Without request_id Lethe assigns one.
	anon := newIntake("", "salon", domain.TypeAccess, demo.ClearCustomerEmail)
	raw, _ = json.Marshal(anon)
	require.NoError(t, in.HandleRequest(ctx, bus.Message{Topic: s.Prefix + bus.TopicIntake, Value: raw}))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM requests WHERE id <> $1 AND started`, msg.RequestID))
}

func scalar(t *testing.T, s *stack, q string, args ...any) string {
	t.Helper()
	var v string
	require.NoError(t, s.Deps.Store.Pool.QueryRow(context.Background(), q, args...).Scan(&v))
	return v
}

// deadLettersNow returns the dead letters already on the stack's DLQ, without waiting for more.
func deadLettersNow(t *testing.T, s *stack) []protocol.DeadLetter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", s.Deps.Bus.Brokers()[0], s.Prefix+bus.TopicDLQ, 0)
	require.NoError(t, err)
	last, err := conn.ReadLastOffset()
	conn.Close()
	require.NoError(t, err)
	var out []protocol.DeadLetter
	if last == 0 {
		return out
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.Deps.Bus.Brokers(), Topic: s.Prefix + bus.TopicDLQ, Partition: 0,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err)
		var dl protocol.DeadLetter
		require.NoError(t, json.Unmarshal(m.Value, &dl))
		out = append(out, dl)
		if m.Offset+1 >= last {
			return out
		}
	}
}

// Kafka intake is never refused, but its submissions use up the subject's budget, so a flood
// through intake cannot be topped up through MyAccount or the API.
func TestIntakeCountsAgainstTheSubjectWithoutBeingRefused(t *testing.T) {
	s := newStack(t)
	limited := s.Deps.Limited()
	in := s.intake(limited)
	ctx := context.Background()
	budget := s.Cfg.Limits.Submit.Subject.N
	for range budget + 2 {
		raw, err := json.Marshal(newIntake("", "salon", domain.TypeAccess, demo.ClearCustomerEmail))
		require.NoError(t, err)
		require.NoError(t, in.HandleRequest(ctx, bus.Message{Topic: s.Prefix + bus.TopicIntake, Value: raw}), "intake over the budget")
	}
	assert.Equal(t, budget+2, s.count(`SELECT count(*) FROM requests WHERE started`))
	_, err := limited.Submit(ctx, requests.Submission{TenantID: "salon", Type: domain.TypeAccess, Subject: connectors.Subject{Email: demo.ClearCustomerEmail}, Channel: "myaccount"})
	assert.ErrorIs(t, err, requests.ErrRateLimited, "the same subject on another surface")
}
