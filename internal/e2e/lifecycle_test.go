package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

// mailTo lists the subject lines the Mailgun stand-in accepted for one address, in order.
func (s *stack) mailTo(addr string) []string {
	var out []string
	for _, e := range s.Mailgun.Events() {
		if a, ok := e.(*events.Accepted); ok && a.Recipient == addr {
			out = append(out, a.Message.Headers.Subject)
		}
	}
	return out
}

func readZip(t *testing.T, s *stack, uri string) map[string][]byte {
	t.Helper()
	r, err := s.Deps.Exports.Open(context.Background(), uri)
	require.NoError(t, err)
	defer r.Close()
	raw, err := io.ReadAll(r)
	require.NoError(t, err)
	return teststack.Unzip(t, raw)
}

// An access request for a demo customer runs end to end through the Kafka fan-out, and the
// export holds exactly that customer's records from the demo database.
func TestAccessRequestEndToEnd(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	email := demo.HealthNotesCustomerEmail
	id := s.Submit(domain.TypeAccess, connectors.Subject{Email: email})
	st := s.Await(id)
	s.record(id, "request_access")

	require.Equal(t, domain.StatusCompleted, st.Status)
	require.NotNil(t, st.Export)
	files := readZip(t, s, st.Export.URI)

	// The export's expiry waits in Temporal, started with a delay that ends when it is due.
	d, err := s.Deps.Temporal.DescribeWorkflowExecution(context.Background(), activities.ExportExpiryID(id), "")
	require.NoError(t, err)
	info := d.GetWorkflowExecutionInfo()
	assert.Equal(t, "ExportExpiryWorkflow", info.GetType().GetName())
	assert.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, info.GetStatus())
	assert.WithinDuration(t, info.GetStartTime().AsTime().Add(s.Deps.Cfg.ExportExpiry()), info.GetExecutionTime().AsTime(), time.Minute)

	customers := teststack.Rows(t, files, "database/customers.json")
	require.Len(t, customers, 1)
	assert.Equal(t, email, customers[0]["email"])
	assert.Equal(t, demo.HealthNotesCustomerNumber, customers[0]["customer_number"])

	// Bookings: the same start times as in the demo database, and no one else's.
	var want []string
	rows, err := s.Demo.Query(context.Background(), `SELECT b.starts_at FROM bookings b JOIN customers c ON c.id = b.customer_id WHERE c.email = $1`, email)
	require.NoError(t, err)
	for rows.Next() {
		var at time.Time
		require.NoError(t, rows.Scan(&at))
		want = append(want, at.UTC().Format(time.RFC3339))
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, want)
	var got []string
	for _, b := range teststack.Rows(t, files, "database/bookings.json") {
		at, err := time.Parse(time.RFC3339Nano, b["starts_at"].(string))
		require.NoError(t, err)
		got = append(got, at.UTC().Format(time.RFC3339))
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.Equal(t, want, got)

	notes := teststack.Rows(t, files, "database/consultation_notes.json")
	assert.Equal(t, s.scalar(`SELECT count(*) FROM consultation_notes n JOIN customers c ON c.id = n.customer_id WHERE c.email = $1`, email), itoa(len(notes)))
	assert.Contains(t, files, "database/bookings.csv")
	assert.Contains(t, string(files["summary.html"]), "Health data")

	subjects := s.mailTo(email)
	require.Len(t, subjects, 3, "acknowledgement, export ready, completion: %q", subjects)
	for _, subj := range subjects {
		assert.Contains(t, subj, id)
	}
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + jsonNum(n)) }

func jsonNum(n int) string { b, _ := json.Marshal(n); return string(b) }

// An erasure removes personal data, keeps invoices with the identity removed, and sends the
// completion email before Lethe forgets the address.
func TestErasureRequestEndToEnd(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	email := demo.ClearCustomerEmail
	ctx := context.Background()
	var customerID int64
	require.NoError(t, s.Demo.QueryRow(ctx, `SELECT id FROM customers WHERE email = $1`, email).Scan(&customerID))
	invoicesBefore := s.scalar(`SELECT count(*)::text || '/' || coalesce(sum(amount_cents), 0)::text FROM invoices WHERE customer_id = $1`, customerID)
	require.NotEqual(t, "0/0", invoicesBefore, "the demo customer has invoices to keep")

	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: email})
	st := s.Await(id)
	s.record(id, "request_erasure")
	require.Equal(t, domain.StatusCompleted, st.Status)

	assert.Equal(t, invoicesBefore, s.scalar(`SELECT count(*)::text || '/' || coalesce(sum(amount_cents), 0)::text FROM invoices WHERE customer_id = $1`, customerID),
		"invoices and their amounts are kept")
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM invoices WHERE customer_id = $1 AND billing_name <> 'Erased customer'`, customerID))
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM customers WHERE email = $1`, email), "the address is gone")
	assert.Equal(t, "Erased", s.scalar(`SELECT first_name FROM customers WHERE id = $1`, customerID))
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM consultation_notes WHERE customer_id = $1`, customerID))

	// Lethe's own copy of the address went last, after the completion notice.
	var order []string
	rows, err := s.Deps.Store.Pool.Query(ctx, `SELECT action, detail->>'kind' FROM audit_events WHERE request_id = $1 ORDER BY id`, id)
	require.NoError(t, err)
	for rows.Next() {
		var action string
		var kind *string
		require.NoError(t, rows.Scan(&action, &kind))
		if kind != nil {
			action += ":" + *kind
		}
		order = append(order, action)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, "request.completed", order[len(order)-1])
	require.Equal(t, "subject.forgotten", order[len(order)-2])
	require.Equal(t, "subject.notified:completion", order[len(order)-3])
	var left int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM request_subjects WHERE request_id = $1`, id).Scan(&left))
	assert.Zero(t, left)
	assert.Len(t, s.mailTo(email), 2, "acknowledgement and completion")
}

// An erasure for a customer with a future booking is blocked with the readable reason, the
// subject is told, and nothing is erased.
func TestBlockedErasureEndToEnd(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	email := demo.FutureBookingCustomerEmail
	ctx := context.Background()
	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: email})

	st := s.awaitStatus(id, domain.StatusBlocked)
	require.NotEmpty(t, st.Blocks)
	assert.Equal(t, "active_booking", st.Blocks[0].Code)
	assert.Contains(t, st.Blocks[0].Reason, "booking")
	assert.Equal(t, "1", s.scalar(`SELECT count(*) FROM customers WHERE email = $1`, email), "nothing erased while blocked")

	// The DPO extends it on the real server: the due date moves two months and the subject is told.
	ext, err := s.Deps.Requests().Decide(ctx, "salon", id, workflows.UpdateExtend, workflows.Decision{Actor: "dpo", Reason: "waiting for the booking to pass"})
	require.NoError(t, err)
	require.True(t, ext.Extended)
	require.Greater(t, ext.DueDate, st.DueDate)
	_, err = s.Deps.Requests().Decide(ctx, "salon", id, workflows.UpdateExtend, workflows.Decision{Actor: "dpo", Reason: "again"})
	require.ErrorIs(t, err, requests.ErrRejected, "a request is extended once")

	// Staff close it; the workflow ends canceled.
	_, err = s.Deps.Requests().Decide(ctx, "salon", id, workflows.UpdateCancel, workflows.Decision{Actor: "sam", Reason: "subject will ask again after the booking"})
	require.NoError(t, err)
	assert.Equal(t, domain.StatusCanceled, s.Await(id).Status)
	s.record(id, "request_erasure_blocked_extended")
	subjects := s.mailTo(email)
	require.Len(t, subjects, 3, "acknowledgement, the blocked notice and the extension notice: %q", subjects)
}

// awaitStatus polls the request's live status until it is want.
func (s *stack) awaitStatus(id, want string) domain.RequestState {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		st, err := s.Deps.Requests().Get(ctx, "salon", id)
		if err == nil && st.Status == want {
			return st
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("request %s never reached %s (last: %s, %v)", id, want, st.Status, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A rectification applies the corrected values in the connectors; an objection stops
// marketing at once and records the withdrawal in the consent ledger.
func TestRectificationAndObjectionEndToEnd(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	ctx := context.Background()
	email := demo.HealthNotesCustomerEmail
	id, err := s.Deps.Requests().Submit(ctx, requests.Submission{
		TenantID: "salon", Type: domain.TypeRectification, Subject: connectors.Subject{Email: email},
		Changes: map[string]string{"last_name": "Lovelace", "city": "Eastfold"}, IdentityVerified: true,
	})
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
	assert.Equal(t, "Lovelace/Eastfold", s.scalar(`SELECT last_name || '/' || city FROM customers WHERE email = $1`, email))
	// Art. 19: other services learn which fields were corrected, never the new values.
	ev := s.nextMessage(bus.TopicEvents, func(m bus.Message) bool {
		return strings.Contains(string(m.Value), id) && strings.Contains(string(m.Value), "request.rectified")
	})
	var event bus.Event
	require.NoError(t, json.Unmarshal(ev.Value, &event))
	assert.Equal(t, []any{"city", "last_name"}, event.Data["fields"])
	assert.NotContains(t, string(ev.Value), "Lovelace")

	_, err = s.Demo.Exec(ctx, `UPDATE marketing_consents SET granted = true WHERE customer_id = (SELECT id FROM customers WHERE email = $1)`, email)
	require.NoError(t, err)
	obj := s.Submit(domain.TypeObjection, connectors.Subject{Email: email})
	require.Equal(t, domain.StatusCompleted, s.Await(obj).Status)
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM marketing_consents m JOIN customers c ON c.id = m.customer_id WHERE c.email = $1 AND m.granted`, email))
	var purpose string
	var granted bool
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT purpose, granted FROM consent_ledger WHERE request_id = $1`, obj).Scan(&purpose, &granted))
	assert.Equal(t, "marketing", purpose)
	assert.False(t, granted)
}

// code waits for the verification code of request id to arrive in email's mailbox and to be
// stored, which happens only once the mail was accepted.
func (s *stack) code(email, id string) string {
	s.t.Helper()
	var code string
	require.Eventually(s.t, func() bool {
		for _, m := range s.Mailbox.Messages(email) {
			if m.Kind == mail.KindVerificationCode && m.RequestID == id {
				code = regexp.MustCompile(`\b\d{6}\b`).FindString(m.Text)
			}
		}
		if code == "" {
			return false
		}
		var stored bool
		err := s.Deps.Store.Pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM verification_codes WHERE request_id = $1)`, id).Scan(&stored)
		return err == nil && stored
	}, time.Minute, 50*time.Millisecond)
	return code
}

// A subject who is not vouched for gets a one-time code by email; nothing leaves a connector
// until the code is checked and the identity update arrives.
func TestEmailCodeVerificationEndToEnd(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	ctx := context.Background()
	email := demo.ClearCustomerEmail
	id, err := s.Deps.Requests().Submit(ctx, requests.Submission{TenantID: "salon", Type: domain.TypeAccess, Subject: connectors.Subject{Email: email}})
	require.NoError(t, err)
	st := s.awaitStatus(id, domain.StatusIdentityPending)
	require.Empty(t, st.Connectors, "no connector is asked before verification")

	code := s.code(email, id)
	svc := s.Deps.Requests()
	require.ErrorIs(t, svc.VerifyCode(ctx, "salon", id, "000000"), requests.ErrCodeWrong)
	require.NoError(t, svc.VerifyCode(ctx, "salon", id, code))
	codes := &identity.Codes{Pool: s.Deps.Store.Pool, Key: []byte(s.Cfg.Secrets.SigningKey.Value())}
	_, err = codes.Check(ctx, id, code)
	require.ErrorIs(t, err, identity.ErrUsed, "a code works once")
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
	s.record(id, "request_access_email_code")
	var audit string
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT string_agg(detail::text, ' ') FROM audit_events WHERE request_id = $1`, id).Scan(&audit))
	require.NotContains(t, audit, code, "the code never reaches the audit trail")
}

// With blocked_erasure: close a blocked erasure is closed at once, nothing is erased, and the
// subject is told once: closed, with the reasons and what they can do.
func TestBlockedErasureClosedByPolicyEndToEnd(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e",
		Tenants: strings.Replace(teststack.Salon, "{manual_approval: []}", "{manual_approval: [], blocked_erasure: close}", 1)}), t: t}
	s.RunAll()
	email := demo.FutureBookingCustomerEmail
	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: email})
	st := s.Await(id)
	s.record(id, "request_erasure_blocked_closed")
	assert.Equal(t, domain.StatusDenied, st.Status)
	assert.Contains(t, st.DenialReason, "booking")
	assert.Equal(t, "1", s.scalar(`SELECT count(*) FROM customers WHERE email = $1`, email), "nothing erased while blocked")
	subjects := s.mailTo(email)
	require.Len(t, subjects, 2, "acknowledgement and the closing notice: %q", subjects)
	assert.Equal(t, "Your erasure request "+id+" at Salon Example was closed without erasure", subjects[1])
}
