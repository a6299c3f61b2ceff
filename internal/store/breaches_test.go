package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// The register keeps a breach whole: versions of its content, assessments, clocks and the
// notifications under them, each write idempotent, with its audit event in the same transaction.
func TestBreachRegister(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	b := s.Breaches()
	aware := time.Date(2026, 3, 6, 16, 0, 0, 0, time.UTC)
	opened := aware.Add(5 * time.Hour)
	row := store.BreachRow{ID: "br-1", TenantID: "salon", Title: "Lost laptop", Status: "open", AwareAt: aware,
		Facts: json.RawMessage(`{"establishment":"DE"}`), OpenedBy: "dpo", OpenedAt: opened}

	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		created, err := b.Open(ctx, tx, row)
		require.True(t, created)
		if err != nil {
			return err
		}
		_, err = s.Audit().Append(ctx, tx, store.Event{Key: "br-1:opened", TenantID: "salon", Actor: "dpo", Action: "breach.opened", BreachID: "br-1"})
		return err
	})
	require.NoError(t, err)
	created, err := b.Open(ctx, s.Pool, row)
	require.NoError(t, err)
	assert.False(t, created, "a duplicate open is the same breach")

	n := int64(120)
	for v, nature := range []string{"Laptop stolen from a car", "Laptop stolen; disk not encrypted"} {
		require.NoError(t, b.AddContent(ctx, s.Pool, store.BreachContent{BreachID: "br-1", Version: v + 1,
			Art33: store.Art33{Nature: nature, SubjectCategories: []string{"customers"}, SubjectsApprox: &n}, RecordedBy: "dpo", RecordedAt: opened.Add(time.Duration(v) * time.Hour)}))
	}
	require.NoError(t, b.AddContent(ctx, s.Pool, store.BreachContent{BreachID: "br-1", Version: 2, Art33: store.Art33{Nature: "a retry"}, RecordedBy: "dpo", RecordedAt: opened}))
	require.NoError(t, b.AddAssessment(ctx, s.Pool, store.BreachAssessment{BreachID: "br-1", Seq: 1, Risk: "high", Rationale: "health data", AssessedBy: "dpo", AssessedAt: opened}))
	err = b.AddAssessment(ctx, s.Pool, store.BreachAssessment{BreachID: "br-1", Seq: 2, Risk: "high", Rationale: "", AssessedBy: "dpo", AssessedAt: opened})
	assert.ErrorContains(t, err, "breach_assessments_rationale_check", "an assessment needs its rationale")

	due := aware.Add(72 * time.Hour)
	clock := store.BreachClock{BreachID: "br-1", RuleID: "gdpr-art33-authority", RuleVersion: 1, Regime: "EU GDPR", Notify: "supervisory authority",
		Kind: "deadline", Starts: "awareness", StartedAt: &aware, DueAt: &due, Limit: "72 hours", Source: "GDPR Art. 33(1)", Status: "running", UpdatedAt: opened}
	require.NoError(t, b.SetClocks(ctx, s.Pool, []store.BreachClock{clock}))
	clock.Status = "notified_late"
	require.NoError(t, b.SetClocks(ctx, s.Pool, []store.BreachClock{clock}))

	late := store.BreachNotification{BreachID: "br-1", RuleID: "gdpr-art33-authority", NotifiedAt: due.Add(time.Hour), Late: true, RecordedBy: "dpo", RecordedAt: due.Add(time.Hour)}
	err = b.AddNotification(ctx, s.Pool, late)
	assert.ErrorContains(t, err, "breach_notifications_check", "a late notification needs the reasons for the delay")
	late.LateReasons = "the forensic report came in on day 4"
	require.NoError(t, b.AddNotification(ctx, s.Pool, late))
	err = b.AddNotification(ctx, s.Pool, store.BreachNotification{BreachID: "br-1", RuleID: "ca-residents", NotifiedAt: due, RecordedBy: "dpo", RecordedAt: due})
	assert.ErrorContains(t, err, "breach_notifications_breach_id_rule_id_fkey", "a notification is under one of the breach's clocks")

	// Art. 34(3): an exemption keeps its ground and rationale; disproportionate effort needs the
	// public communication made instead.
	subjects := store.BreachClock{BreachID: "br-1", RuleID: "gdpr-art34-subjects", RuleVersion: 1, Regime: "EU GDPR", Notify: "data subjects",
		Kind: "open", Starts: "high_risk", StartedAt: &aware, Limit: "without undue delay", Source: "GDPR Art. 34", Status: "exempt", UpdatedAt: opened}
	require.NoError(t, b.SetClocks(ctx, s.Pool, []store.BreachClock{clock, subjects}))
	exempt := store.BreachNotification{BreachID: "br-1", RuleID: "gdpr-art34-subjects", NotifiedAt: due, Exemption: "encrypted", RecordedBy: "dpo", RecordedAt: due}
	assert.ErrorContains(t, b.AddNotification(ctx, s.Pool, exempt), "breach_notifications_exemption_check", "an exemption needs its rationale")
	exempt.Exemption, exempt.ExemptionRationale = "disproportionate", "no addresses for 40,000 people"
	assert.ErrorContains(t, b.AddNotification(ctx, s.Pool, exempt), "breach_notifications_exemption_check", "disproportionate needs the public communication")
	exempt.Reference = "https://salon.example/notice-2026-03"
	require.NoError(t, b.AddNotification(ctx, s.Pool, exempt))

	row.Status, row.Risk, row.UpdatedAt = "open", "high", due
	require.NoError(t, b.Update(ctx, s.Pool, row))
	assert.ErrorIs(t, b.Update(ctx, s.Pool, store.BreachRow{ID: "br-nope", Status: "open", UpdatedAt: due}), store.ErrNotFound)

	rec, err := b.Get(ctx, "salon", "br-1")
	require.NoError(t, err)
	assert.Equal(t, "high", rec.Risk)
	assert.True(t, aware.Equal(rec.AwareAt))
	require.Len(t, rec.Contents, 2)
	assert.Equal(t, "Laptop stolen; disk not encrypted", rec.Contents[1].Nature, "a retried version does not overwrite")
	assert.Equal(t, int64(120), *rec.Contents[0].SubjectsApprox)
	require.Len(t, rec.Assessments, 1)
	require.Len(t, rec.Clocks, 2)
	assert.Equal(t, "notified_late", rec.Clocks[0].Status)
	assert.Equal(t, "exempt", rec.Clocks[1].Status)
	require.Len(t, rec.Notifications, 2)
	assert.Equal(t, "disproportionate", rec.Notifications[0].Exemption, "in the order notified")
	assert.Equal(t, "no addresses for 40,000 people", rec.Notifications[0].ExemptionRationale)
	assert.Equal(t, "the forensic report came in on day 4", rec.Notifications[1].LateReasons)

	_, err = b.Get(ctx, "studio", "br-1")
	assert.True(t, errors.Is(err, store.ErrNotFound), "another tenant's breach is not found: %v", err)

	_, err = b.Open(ctx, s.Pool, store.BreachRow{ID: "br-2", TenantID: "salon", Title: "Misdirected email", Status: "open",
		AwareAt: aware.Add(24 * time.Hour), OpenedBy: "support", OpenedAt: opened})
	require.NoError(t, err)
	list, err := b.List(ctx, store.BreachFilter{TenantID: "salon"})
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "br-2", list[0].ID, "newest awareness first")
	list, err = b.List(ctx, store.BreachFilter{TenantID: "studio"})
	require.NoError(t, err)
	assert.Empty(t, list)

	events, err := s.Audit().List(ctx, store.AuditFilter{TenantID: "salon", Action: "breach.opened"})
	require.NoError(t, err)
	require.Len(t, events, 1)
	assert.Equal(t, "br-1", events[0].BreachID)
}
