package e2e_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

// customerNumberStack runs the demo salon behind a database connector that finds subjects by
// customer number alone, as many shop systems do.
func customerNumberStack(t *testing.T) *stack {
	byNumber := regexp.MustCompile(`(?m)^  (email|phone): .*\n`).ReplaceAll(demo.ConnectorConfig, nil)
	require.NotEqual(t, string(demo.ConnectorConfig), string(byNumber))
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e", Connector: byNumber}), t: t}
	s.RunAll()
	return s
}

// submitUnverified files a request the subject must verify by email code, and verifies it.
func (s *stack) submitUnverified(typ string, subject connectors.Subject) string {
	s.t.Helper()
	ctx := context.Background()
	id, err := s.Deps.Requests().Submit(ctx, requests.Submission{TenantID: "salon", Type: typ, Subject: subject})
	require.NoError(s.t, err)
	require.NoError(s.t, s.Deps.Requests().VerifyCode(ctx, "salon", id, s.code(subject.Email, id)))
	return id
}

// awaitSettled polls until the request failed or its workflow closed, however it closed.
func (s *stack) awaitSettled(id string) domain.RequestState {
	s.t.Helper()
	ctx := context.Background()
	var st domain.RequestState
	require.Eventually(s.t, func() bool {
		var err error
		if st, err = s.Deps.Requests().Get(ctx, "salon", id); err != nil {
			return false
		}
		d, err := s.Deps.Temporal.DescribeWorkflowExecution(ctx, id, "")
		return err == nil && (st.Status == domain.StatusFailed ||
			d.WorkflowExecutionInfo.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING)
	}, 2*time.Minute, 100*time.Millisecond, "request %s never settled", id)
	return st
}

// An attacker proves their own email address and types the victim's customer number: the
// email code proves only the email, so no connector command carries the customer number, the
// export holds nothing of the victim's and the erasure touches none of the victim's rows.
func TestTypedCustomerNumberBorrowsNoIdentity(t *testing.T) {
	s := customerNumberStack(t)
	ctx := context.Background()
	const attacker = "mallory@attacker.example"

	access := s.submitUnverified(domain.TypeAccess, connectors.Subject{Email: attacker, CustomerID: demo.HealthNotesCustomerNumber})
	st := s.awaitSettled(access)
	if st.Export != nil {
		files := readZip(t, s, st.Export.URI)
		for name, raw := range files {
			assert.NotContains(t, string(raw), demo.HealthNotesCustomerEmail, "the export's %s holds the victim's data", name)
		}
	}
	assert.Empty(t, s.scanForSubject(demo.HealthNotesCustomerEmail), "Lethe holds the victim's data")

	victimBefore := s.scalar(`SELECT first_name || '/' || email FROM customers WHERE customer_number = $1`, demo.ClearCustomerNumber)
	erasure := s.submitUnverified(domain.TypeErasure, connectors.Subject{Email: attacker, CustomerID: demo.ClearCustomerNumber})
	s.awaitSettled(erasure)
	assert.Equal(t, victimBefore, s.scalar(`SELECT first_name || '/' || email FROM customers WHERE customer_number = $1`, demo.ClearCustomerNumber),
		"the erasure touched the victim's record")
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM lethe_applied_tasks`), "no connector acted for the attacker")

	// The real customer's own request: the number waits for staff, who check it and retry.
	own := s.submitUnverified(domain.TypeAccess, connectors.Subject{Email: demo.HealthNotesCustomerEmail, CustomerID: demo.HealthNotesCustomerNumber})
	require.Equal(t, domain.StatusFailed, s.awaitSettled(own).Status, "a connector that only knows customer numbers has nothing proven to match")
	svc := s.Deps.Requests()
	ids, err := svc.SubjectIdentifiers(ctx, "salon", own)
	require.NoError(t, err)
	require.Len(t, ids, 2)
	assert.Equal(t, requests.IdentifierCustomerID, ids[1].Name)
	assert.Nil(t, ids[1].Proof, "the typed customer number is not proven by the email code")
	_, err = svc.ConfirmIdentifiers(ctx, "salon", own, "sam", []string{requests.IdentifierCustomerID})
	require.NoError(t, err)
	// Staff reading the identifiers with lethe requests show is in the audit trail: who read
	// them and the subject's reference, never the values.
	assert.Contains(t, s.lethe("requests", "show", own, "--actor", "sam"), demo.HealthNotesCustomerNumber)
	var viewed int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE request_id = $1 AND action = 'request.subject_viewed'
		AND actor = 'sam' AND length(subject_ref) = 64 AND detail::text NOT LIKE '%' || $2 || '%'`, own, demo.HealthNotesCustomerNumber).Scan(&viewed))
	assert.Equal(t, 1, viewed)
	retried := time.Now()
	_, err = svc.Decide(ctx, "salon", own, workflows.UpdateRetry, workflows.Decision{Actor: "sam"})
	require.NoError(t, err)
	st = s.Await(own)
	require.Equal(t, domain.StatusCompleted, st.Status)
	// The retry's command is a new one the bridge accepts, not a clash with the failed one
	// that would wait out the two-minute heartbeat timeout.
	assert.Less(t, time.Since(retried), 90*time.Second)
	customers := teststack.Rows(t, readZip(t, s, st.Export.URI), "database/customers.json")
	require.Len(t, customers, 1)
	assert.Equal(t, demo.HealthNotesCustomerEmail, customers[0]["email"])
}

// scanForSubject lists every place under Lethe's control that still holds one of needles:
// every column of every row of every table of Lethe's database (as text), and every file
// under the export directory (ZIPs read inside).
func (s *stack) scanForSubject(needles ...string) []string {
	s.t.Helper()
	ctx := context.Background()
	var found []string
	hit := func(where, text string) {
		for _, n := range needles {
			if strings.Contains(text, n) {
				found = append(found, where+" holds "+n)
			}
		}
	}
	rows, err := s.Deps.Store.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	require.NoError(s.t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(s.t, err)
	require.Contains(s.t, tables, "request_subjects")
	for _, table := range tables {
		rows, err := s.Deps.Store.Pool.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		require.NoError(s.t, err)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(s.t, err)
		for _, text := range texts {
			hit("table "+table, text)
		}
	}
	err = filepath.WalkDir(s.Cfg.Exports.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		hit(path, string(raw))
		if strings.HasSuffix(path, ".zip") {
			for name, inner := range teststack.Unzip(s.t, raw) {
				hit(path+"!"+name, string(inner))
			}
		}
		return nil
	})
	if !os.IsNotExist(err) {
		require.NoError(s.t, err)
	}
	return found
}

// Access, rectification, a request never verified, then erasure, for one subject: afterwards
// nothing under Lethe's control holds the subject's email, phone, name or corrected value.
func TestErasureForgetsEveryCopy(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	ctx := context.Background()
	subject := connectors.Subject{Email: demo.ClearCustomerEmail, Phone: demo.ClearCustomerPhone}
	var first, last string
	require.NoError(t, s.Demo.QueryRow(ctx, `SELECT first_name, last_name FROM customers WHERE email = $1`, subject.Email).Scan(&first, &last))
	const corrected = "Eastfoldshire"

	access := s.Submit(domain.TypeAccess, subject)
	require.Equal(t, domain.StatusCompleted, s.Await(access).Status)
	require.NotEmpty(t, s.scanForSubject(subject.Email), "the access request left its export")
	rect, err := s.Deps.Requests().Submit(ctx, requests.Submission{
		TenantID: "salon", Type: domain.TypeRectification, Subject: subject,
		Changes: map[string]string{"city": corrected}, IdentityVerified: true,
	})
	require.NoError(t, err)
	require.Equal(t, domain.StatusCompleted, s.Await(rect).Status)
	pending, err := s.Deps.Requests().Submit(ctx, requests.Submission{TenantID: "salon", Type: domain.TypeAccess, Subject: subject})
	require.NoError(t, err)
	s.code(subject.Email, pending)

	erasure := s.Submit(domain.TypeErasure, subject)
	require.Equal(t, domain.StatusCompleted, s.Await(erasure).Status)
	assert.Empty(t, s.scanForSubject(subject.Email, subject.Phone, first, last, corrected))

	var detail map[string]any
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT detail FROM audit_events WHERE request_id = $1 AND action = 'subject.forgotten'`, erasure).Scan(&detail))
	assert.Equal(t, map[string]any{"requests": 4.0, "verification_codes": 1.0, "export_packages": 1.0, "export_files": detail["export_files"], "kept_for_open_requests": 0.0, "breach_notice_addresses": 0.0}, detail)
	assert.Greater(t, detail["export_files"], 1.0, "the package and the connector's files")
	_, err = s.Deps.Requests().SendCode(ctx, "salon", pending, "")
	assert.ErrorIs(t, err, requests.ErrNoEmail, "the pending request can no longer reach the address")
}
