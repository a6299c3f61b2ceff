package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/retention"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/worker"
	"github.com/lethe-privacy/lethe/workflows"
)

// retentionSalon is the salon with retention rules on its database and a DPO token.
var retentionSalon = teststack.Salon + `
    tokens: [{role: dpo, env: SALON_DPO_TOKEN}]
    retention:
      hour: 5
      batches_per_command: 1
      rules:
        - {name: inactive_customers, connector: database, after: 3y}
        - {name: past_bookings, connector: database, after: 60d}`

const dpoToken = "salon-dpo-token-for-retention"

// plantCustomer adds a customer of the demo salon who last booked at lastBooking; owing leaves
// an invoice unpaid. It returns the customer's id and email.
func (s *stack) plantCustomer(n int, created, lastBooking time.Duration, owing bool) (int64, string) {
	s.t.Helper()
	ctx := context.Background()
	email := fmt.Sprintf("retention.%d@example.com", n)
	var id int64
	require.NoError(s.t, s.Demo.QueryRow(ctx, `INSERT INTO customers (customer_number, first_name, last_name, email, phone, birth_date, street, postcode, city, created_at)
		VALUES ($1, 'Planted', 'Person', $2, NULL, '1980-01-01', '2 Old Road', 'NB1 1AA', 'Northbridge', now() - make_interval(secs => $3))
		RETURNING id`, fmt.Sprintf("RET-%d", n), email, created.Seconds()).Scan(&id))
	_, err := s.Demo.Exec(ctx, `INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, status, notes, created_at)
		VALUES ($1, 1, 1, now() - make_interval(secs => $2), 'completed', 'Planted note', now() - make_interval(secs => $2))`, id, lastBooking.Seconds())
	require.NoError(s.t, err)
	if owing {
		_, err = s.Demo.Exec(ctx, `INSERT INTO invoices (customer_id, invoice_number, billing_name, billing_address, amount_cents, currency, issued_at, due_at)
			VALUES ($1, $2, 'Planted Person', '2 Old Road', 900, 'GBP', now() - interval '4 years', now() - interval '4 years')`, id, fmt.Sprintf("INV-RET-%d", n))
		require.NoError(s.t, err)
	}
	return id, email
}

func (s *stack) erased(id int64) bool {
	return s.scalar(`SELECT first_name = 'Erased' AND birth_date IS NULL FROM customers WHERE id = $1`, id) == "true"
}

func (s *stack) retentionRun(svc *retention.Service, dryRun bool) *workflows.RetentionProgress {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := svc.Start(ctx, "salon", "e2e", dryRun, time.Now())
	require.NoError(s.t, err)
	var p *workflows.RetentionProgress
	require.NoError(s.t, run.Get(ctx, &p), "retention run %s", run.GetID())
	require.True(s.t, p.Done)
	for _, r := range p.Rules {
		require.Empty(s.t, r.Error, "rule %s", r.Rule)
	}
	return p
}

// The salon's retention rules run through the database connector's runner over Kafka: the
// schedule exists at the configured hour, a dry run counts what a run then purges, rule by
// rule, with the same subjects blocked, the closed request's expired export goes too, and a
// second run purges nothing. Every activity of the retention workflow runs for real.
func TestRetentionDryRunAndRunAgreeOnTheRealStack(t *testing.T) {
	// Small batches, so each rule takes several commands and the erase walks on past a
	// blocked customer by its cursor.
	small := strings.Replace(strings.Replace(string(demo.ConnectorConfig), "batch_size: 200", "batch_size: 1", 1), "batch_size: 500", "batch_size: 40", 1)
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e", Tenants: retentionSalon, Connector: []byte(small),
		Env: map[string]string{"SALON_DPO_TOKEN": dpoToken}}), t: t}
	s.RunAll()
	ctx := context.Background()
	year := 365 * 24 * time.Hour
	gone1, _ := s.plantCustomer(1, 6*year, 4*year, false)
	gone2, _ := s.plantCustomer(2, 5*year, 4*year, false)
	owing, _ := s.plantCustomer(3, 6*year, 4*year, true)
	active, _ := s.plantCustomer(4, 6*year, 30*24*time.Hour, false)

	// A denied request's export, closed 40 days ago, that no expiry workflow ever deleted.
	zip := filepath.Join(s.Cfg.Exports.Dir, "salon", "R-OLD", "R-OLD-access.zip")
	require.NoError(t, os.MkdirAll(filepath.Dir(zip), 0o700))
	require.NoError(t, os.WriteFile(zip, []byte("PK"), 0o600))
	_, err := s.Deps.Store.Pool.Exec(ctx, `INSERT INTO requests (id, tenant_id, type, status, regime, received_at, updated_at, export_uri, export_sha256, export_bytes)
		VALUES ('R-OLD', 'salon', 'access', 'denied', 'gdpr', now() - interval '50 days', now() - interval '40 days', $1, 'x', 2)`, "file://"+zip)
	require.NoError(t, err)

	svc := s.Deps.Retention()
	require.Eventually(t, func() bool {
		_, err := svc.Status(ctx, "salon", 5)
		return err == nil
	}, time.Minute, 100*time.Millisecond, "the worker creates the schedule at start")
	st, err := svc.Status(ctx, "salon", 5)
	require.NoError(t, err)
	assert.Equal(t, worker.RetentionSchedule("salon"), st.Schedule)
	require.NotEmpty(t, st.Next)
	assert.Equal(t, 5, st.Next[0].UTC().Hour(), "the daily run is at the tenant's hour")

	dry := s.retentionRun(svc, true)
	assert.False(t, s.erased(gone1), "a dry run changes nothing")
	_, err = os.Stat(zip)
	require.NoError(t, err, "a dry run deletes no export")

	real := s.retentionRun(svc, false)
	require.Len(t, real.Rules, 2)
	for i := range real.Rules {
		assert.Equal(t, dry.Rules[i].Rows, real.Rules[i].Rows, "rule %s: the dry run counted what the run purged", real.Rules[i].Rule)
		assert.Equal(t, dry.Rules[i].Blocked, real.Rules[i].Blocked, "rule %s", real.Rules[i].Rule)
	}
	assert.GreaterOrEqual(t, real.Rules[0].Rows, int64(2))
	assert.GreaterOrEqual(t, real.Rules[0].Blocked, int64(1))
	assert.Positive(t, real.Rules[1].Rows)
	assert.Greater(t, real.Rules[0].Commands, 3, "erased in bounded commands")
	assert.Greater(t, real.Rules[1].Commands, 1, "anonymised in bounded commands")
	assert.EqualValues(t, 1, dry.Exports)
	assert.EqualValues(t, 1, real.Exports)
	assert.True(t, s.erased(gone1))
	assert.True(t, s.erased(gone2))
	assert.False(t, s.erased(owing), "an unpaid invoice blocks the purge")
	assert.False(t, s.erased(active))
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM bookings WHERE starts_at < now() - interval '61 days' AND notes IS NOT NULL`))
	_, err = os.Stat(zip)
	assert.ErrorIs(t, err, os.ErrNotExist, "the expired export is deleted")

	again := s.retentionRun(svc, false)
	for _, r := range again.Rules {
		assert.Zero(t, r.Rows, "rule %s: a second run purges nothing more", r.Rule)
	}
	assert.Zero(t, again.Exports)

	// Each run is in the audit trail with its counts; status shows them newest first.
	st, err = svc.Status(ctx, "salon", 5)
	require.NoError(t, err)
	require.Len(t, st.Runs, 3)
	assert.Equal(t, activities.ActionRetentionRun, st.Runs[0].Action)
	assert.Equal(t, activities.ActionRetentionDryRun, st.Runs[2].Action)
	rules := st.Runs[1].Detail["rules"].([]any)
	assert.EqualValues(t, real.Rules[0].Rows, rules[0].(map[string]any)["rows"])
	n, err := s.Deps.Store.Audit().Verify(ctx, "salon")
	require.NoError(t, err, "the chain holds")
	assert.Positive(t, n)
}

// An expiry date set through the API purges that subject when it passes, through the database
// connector's runner, and not before; Lethe then forgets the identifiers it kept for it.
func TestSubjectExpiryPurgesThatSubjectOnTheRealStack(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e", Tenants: retentionSalon,
		Env: map[string]string{"SALON_DPO_TOKEN": dpoToken}}), t: t}
	s.RunAll()
	ctx := context.Background()
	expiring, email := s.plantCustomer(10, 24*time.Hour, 48*time.Hour, false)
	other, _ := s.plantCustomer(11, 24*time.Hour, 48*time.Hour, false)
	api := httptest.NewServer(s.Handler())
	t.Cleanup(api.Close)

	put := func(token string, body any) (*http.Response, map[string]any) {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPut, api.URL+"/v1/subjects/expiry", bytes.NewReader(raw))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	resp, _ := put("wrong-token-0123456789", map[string]any{"subject": map[string]string{"email": email}, "expires_at": time.Now().Add(time.Hour)})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// First a date a year off, then moved to a few seconds from now.
	resp, out := put(dpoToken, map[string]any{"subject": map[string]string{"email": email}, "expires_at": time.Now().Add(365 * 24 * time.Hour)})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", out)
	assert.NotContains(t, fmt.Sprint(out), email, "the answer holds the reference, never the address")
	id := out["id"].(string)
	at := time.Now().Add(3 * time.Second)
	resp, out = put(dpoToken, map[string]any{"subject": map[string]string{"email": strings.ToUpper(email)}, "expires_at": at, "actor": "dana"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", out)
	require.Equal(t, id, out["id"], "the same subject has one expiry date")
	assert.False(t, s.erased(expiring), "kept until the date")

	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, s.Deps.Temporal.GetWorkflow(wctx, workflows.ExpiryWorkflowID(id), "").Get(wctx, nil))
	assert.True(t, s.erased(expiring), "purged once the date passed")
	assert.False(t, s.erased(other))
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM bookings WHERE customer_id = $1 AND notes IS NOT NULL`, expiring))

	e, err := s.Deps.Store.Expiries().Get(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, e.PurgedAt)
	assert.Empty(t, e.Email, "Lethe forgets the identifiers it kept for the purge")
	evs, err := s.Deps.Store.Audit().List(ctx, store.AuditFilter{TenantID: "salon", SubjectRef: e.SubjectRef})
	require.NoError(t, err)
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
		if ev.Action == activities.ActionExpiryPurged {
			assert.False(t, ev.At.Before(at), "purged at %s, not before the date %s", ev.At, at)
		}
		assert.NotContains(t, fmt.Sprint(ev.Detail), email)
	}
	assert.Equal(t, []string{activities.ActionExpiryPurged, activities.ActionExpirySet, activities.ActionExpirySet}, actions)
}
