package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Breaches is the breach register (tables breaches, breach_contents, breach_assessments,
// breach_clocks, breach_notifications; migration 0016). The breach workflow writes it through
// its activities, each write in one transaction with its audit event; the API and the CLI read
// it. Writes are idempotent, since activities are retried.
type Breaches struct{ pool *pgxpool.Pool }

// Breaches returns the breach register's repository.
func (s *Store) Breaches() Breaches { return Breaches{pool: s.Pool} }

// BreachRow is one breach. Facts and State are JSON encoded by the caller's types.
type BreachRow struct {
	ID           string          `json:"id"`
	TenantID     string          `json:"tenant_id"`
	Title        string          `json:"title"`
	Status       string          `json:"status"`
	AwareAt      time.Time       `json:"aware_at"`
	DeterminedAt *time.Time      `json:"determined_at,omitempty"`
	MaterialAt   *time.Time      `json:"material_at,omitempty"`
	Risk         string          `json:"risk"`
	Facts        json.RawMessage `json:"facts"`
	State        json.RawMessage `json:"state"`
	OpenedBy     string          `json:"opened_by"`
	OpenedAt     time.Time       `json:"opened_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

// Art33 is what Art. 33(3) GDPR asks a breach notification to describe, with what is still to
// follow (33(4)).
type Art33 struct {
	Nature            string   `json:"nature,omitempty"`             // (a) nature of the breach
	SubjectCategories []string `json:"subject_categories,omitempty"` // (a)
	SubjectsApprox    *int64   `json:"subjects_approx,omitempty"`    // (a) approximate number of data subjects
	RecordCategories  []string `json:"record_categories,omitempty"`  // (a)
	RecordsApprox     *int64   `json:"records_approx,omitempty"`     // (a) approximate number of records
	ContactPoint      string   `json:"contact_point,omitempty"`      // (b) the DPO or other contact point
	Consequences      string   `json:"consequences,omitempty"`       // (c) likely consequences
	Measures          string   `json:"measures,omitempty"`           // (d) measures taken or proposed
	ToFollow          string   `json:"to_follow,omitempty"`          // 33(4): what is not known yet
}

// BreachContent is one version of a breach's Art. 33(3) content.
type BreachContent struct {
	BreachID string `json:"breach_id"`
	Version  int    `json:"version"`
	Art33
	RecordedBy string    `json:"recorded_by"`
	RecordedAt time.Time `json:"recorded_at"`
}

// BreachAssessment is one risk assessment.
type BreachAssessment struct {
	BreachID   string    `json:"breach_id"`
	Seq        int       `json:"seq"`
	Risk       string    `json:"risk"`
	Rationale  string    `json:"rationale"`
	AssessedBy string    `json:"assessed_by"`
	AssessedAt time.Time `json:"assessed_at"`
}

// BreachClock is one notification obligation of a breach and where its clock stands.
type BreachClock struct {
	BreachID    string     `json:"breach_id"`
	RuleID      string     `json:"rule"`
	RuleVersion int        `json:"rule_version"`
	Regime      string     `json:"regime"`
	Notify      string     `json:"notify"`
	Kind        string     `json:"kind"`
	Starts      string     `json:"starts"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	DueAt       *time.Time `json:"due_at,omitempty"`
	Limit       string     `json:"limit"`
	Source      string     `json:"source"`
	Status      string     `json:"status"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// BreachNotification is the notification made under one clock.
type BreachNotification struct {
	BreachID    string    `json:"breach_id"`
	RuleID      string    `json:"rule"`
	NotifiedAt  time.Time `json:"notified_at"`
	Reference   string    `json:"reference,omitempty"`
	Late        bool      `json:"late"`
	LateReasons string    `json:"late_reasons,omitempty"`
	// Exemption is the Art. 34(3) ground for not telling the people individually, with its
	// rationale; for "disproportionate", Reference names the public communication.
	Exemption          string    `json:"exemption,omitempty"`
	ExemptionRationale string    `json:"exemption_rationale,omitempty"`
	RecordedBy         string    `json:"recorded_by"`
	RecordedAt         time.Time `json:"recorded_at"`
}

// BreachRecord is a breach with everything the register holds about it.
type BreachRecord struct {
	BreachRow
	Contents      []BreachContent      `json:"contents"`
	Assessments   []BreachAssessment   `json:"assessments"`
	Clocks        []BreachClock        `json:"clocks"`
	Notifications []BreachNotification `json:"notifications"`
}

// Open registers a new breach and reports whether it was created: false when a breach with its
// id exists (a duplicate open, or a retry).
func (Breaches) Open(ctx context.Context, db Querier, b BreachRow) (bool, error) {
	tag, err := db.Exec(ctx, `
		INSERT INTO breaches (id, tenant_id, title, status, aware_at, determined_at, material_at, risk, facts, state, opened_by, opened_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
		ON CONFLICT (id) DO NOTHING`,
		b.ID, b.TenantID, b.Title, b.Status, b.AwareAt, b.DeterminedAt, b.MaterialAt, b.Risk, jsonOr(b.Facts), jsonOr(b.State), b.OpenedBy, b.OpenedAt)
	if err != nil {
		return false, fmt.Errorf("registering breach %s: %w", b.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Update writes a breach's changing fields: status, determination and materiality times, risk,
// facts and state.
func (Breaches) Update(ctx context.Context, db Querier, b BreachRow) error {
	tag, err := db.Exec(ctx, `
		UPDATE breaches SET status = $2, determined_at = $3, material_at = $4, risk = $5, facts = $6, state = $7, updated_at = $8
		WHERE id = $1`, b.ID, b.Status, b.DeterminedAt, b.MaterialAt, b.Risk, jsonOr(b.Facts), jsonOr(b.State), b.UpdatedAt)
	if err != nil {
		return fmt.Errorf("updating breach %s: %w", b.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("updating breach %s: %w", b.ID, ErrNotFound)
	}
	return nil
}

// AddContent records one version of the content; a version already recorded is left as it is.
func (Breaches) AddContent(ctx context.Context, db Querier, c BreachContent) error {
	_, err := db.Exec(ctx, `
		INSERT INTO breach_contents (breach_id, version, nature, subject_categories, subjects_approx, record_categories,
			records_approx, contact_point, consequences, measures, to_follow, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (breach_id, version) DO NOTHING`,
		c.BreachID, c.Version, c.Nature, nonNil(c.SubjectCategories), c.SubjectsApprox, nonNil(c.RecordCategories),
		c.RecordsApprox, c.ContactPoint, c.Consequences, c.Measures, c.ToFollow, c.RecordedBy, c.RecordedAt)
	if err != nil {
		return fmt.Errorf("recording version %d of the content of breach %s: %w", c.Version, c.BreachID, err)
	}
	return nil
}

// AddAssessment records one assessment; one already recorded is left as it is.
func (Breaches) AddAssessment(ctx context.Context, db Querier, a BreachAssessment) error {
	_, err := db.Exec(ctx, `
		INSERT INTO breach_assessments (breach_id, seq, risk, rationale, assessed_by, assessed_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (breach_id, seq) DO NOTHING`, a.BreachID, a.Seq, a.Risk, a.Rationale, a.AssessedBy, a.AssessedAt)
	if err != nil {
		return fmt.Errorf("recording assessment %d of breach %s: %w", a.Seq, a.BreachID, err)
	}
	return nil
}

// SetClocks writes the breach's clocks as they now stand (each created or updated).
func (Breaches) SetClocks(ctx context.Context, db Querier, clocks []BreachClock) error {
	for _, c := range clocks {
		_, err := db.Exec(ctx, `
			INSERT INTO breach_clocks (breach_id, rule_id, rule_version, regime, notify, kind, starts, started_at, due_at, limit_words, source, status, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (breach_id, rule_id) DO UPDATE SET rule_version = $3, regime = $4, notify = $5, kind = $6, starts = $7,
				started_at = $8, due_at = $9, limit_words = $10, source = $11, status = $12, updated_at = $13`,
			c.BreachID, c.RuleID, c.RuleVersion, c.Regime, c.Notify, c.Kind, c.Starts, c.StartedAt, c.DueAt, c.Limit, c.Source, c.Status, c.UpdatedAt)
		if err != nil {
			return fmt.Errorf("recording the %s clock of breach %s: %w", c.RuleID, c.BreachID, err)
		}
	}
	return nil
}

// AddNotification records the notification under one clock; a second one for the same clock is
// left out (the first stands).
func (Breaches) AddNotification(ctx context.Context, db Querier, n BreachNotification) error {
	_, err := db.Exec(ctx, `
		INSERT INTO breach_notifications (breach_id, rule_id, notified_at, reference, late, late_reasons,
			exemption, exemption_rationale, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (breach_id, rule_id) DO NOTHING`,
		n.BreachID, n.RuleID, n.NotifiedAt, n.Reference, n.Late, n.LateReasons, n.Exemption, n.ExemptionRationale, n.RecordedBy, n.RecordedAt)
	if err != nil {
		return fmt.Errorf("recording the %s notification of breach %s: %w", n.RuleID, n.BreachID, err)
	}
	return nil
}

// BreachFilter selects breaches; the API and the CLI share it. Empty fields do not filter.
// Breaches come newest awareness first; Limit caps the page (default 100).
type BreachFilter struct {
	TenantID string
	Status   string
	Limit    int
}

// List returns the breaches f selects, without their contents.
func (q Breaches) List(ctx context.Context, f BreachFilter) ([]BreachRow, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := q.pool.Query(ctx, `
		SELECT `+breachColumns+` FROM breaches
		WHERE ($1 = '' OR tenant_id = $1) AND ($2 = '' OR status = $2)
		ORDER BY aware_at DESC, id LIMIT $3`, f.TenantID, f.Status, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("listing breaches: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanBreach)
	if err != nil {
		return nil, fmt.Errorf("reading breaches: %w", err)
	}
	return out, nil
}

// Get returns tenant's breach id with its contents, assessments, clocks and notifications;
// ErrNotFound for an unknown id or another tenant's breach. An empty tenant reads any tenant's.
func (q Breaches) Get(ctx context.Context, tenant, id string) (BreachRecord, error) {
	var rec BreachRecord
	row, err := q.pool.Query(ctx, `SELECT `+breachColumns+` FROM breaches WHERE id = $1 AND ($2 = '' OR tenant_id = $2)`, id, tenant)
	if err != nil {
		return rec, fmt.Errorf("reading breach %s: %w", id, err)
	}
	rec.BreachRow, err = pgx.CollectExactlyOneRow(row, scanBreach)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, fmt.Errorf("reading breach %s: %w", id, err)
	}
	if rec.Contents, err = collect(ctx, q.pool, `
		SELECT breach_id, version, nature, subject_categories, subjects_approx, record_categories, records_approx,
			contact_point, consequences, measures, to_follow, recorded_by, recorded_at
		FROM breach_contents WHERE breach_id = $1 ORDER BY version`, id, func(r pgx.CollectableRow) (c BreachContent, err error) {
		err = r.Scan(&c.BreachID, &c.Version, &c.Nature, &c.SubjectCategories, &c.SubjectsApprox, &c.RecordCategories, &c.RecordsApprox,
			&c.ContactPoint, &c.Consequences, &c.Measures, &c.ToFollow, &c.RecordedBy, &c.RecordedAt)
		return c, err
	}); err != nil {
		return rec, fmt.Errorf("reading the content of breach %s: %w", id, err)
	}
	if rec.Assessments, err = collect(ctx, q.pool, `
		SELECT breach_id, seq, risk, rationale, assessed_by, assessed_at FROM breach_assessments WHERE breach_id = $1 ORDER BY seq`,
		id, func(r pgx.CollectableRow) (a BreachAssessment, err error) {
			err = r.Scan(&a.BreachID, &a.Seq, &a.Risk, &a.Rationale, &a.AssessedBy, &a.AssessedAt)
			return a, err
		}); err != nil {
		return rec, fmt.Errorf("reading the assessments of breach %s: %w", id, err)
	}
	if rec.Clocks, err = collect(ctx, q.pool, `
		SELECT breach_id, rule_id, rule_version, regime, notify, kind, starts, started_at, due_at, limit_words, source, status, updated_at
		FROM breach_clocks WHERE breach_id = $1 ORDER BY due_at NULLS LAST, rule_id`, id, func(r pgx.CollectableRow) (c BreachClock, err error) {
		err = r.Scan(&c.BreachID, &c.RuleID, &c.RuleVersion, &c.Regime, &c.Notify, &c.Kind, &c.Starts, &c.StartedAt, &c.DueAt,
			&c.Limit, &c.Source, &c.Status, &c.UpdatedAt)
		return c, err
	}); err != nil {
		return rec, fmt.Errorf("reading the clocks of breach %s: %w", id, err)
	}
	if rec.Notifications, err = collect(ctx, q.pool, `
		SELECT breach_id, rule_id, notified_at, reference, late, late_reasons, exemption, exemption_rationale, recorded_by, recorded_at
		FROM breach_notifications WHERE breach_id = $1 ORDER BY notified_at, rule_id`, id, func(r pgx.CollectableRow) (n BreachNotification, err error) {
		err = r.Scan(&n.BreachID, &n.RuleID, &n.NotifiedAt, &n.Reference, &n.Late, &n.LateReasons, &n.Exemption, &n.ExemptionRationale, &n.RecordedBy, &n.RecordedAt)
		return n, err
	}); err != nil {
		return rec, fmt.Errorf("reading the notifications of breach %s: %w", id, err)
	}
	return rec, nil
}

const breachColumns = `id, tenant_id, title, status, aware_at, determined_at, material_at, risk, facts, state, opened_by, opened_at, updated_at`

func scanBreach(r pgx.CollectableRow) (b BreachRow, err error) {
	err = r.Scan(&b.ID, &b.TenantID, &b.Title, &b.Status, &b.AwareAt, &b.DeterminedAt, &b.MaterialAt, &b.Risk, &b.Facts, &b.State,
		&b.OpenedBy, &b.OpenedAt, &b.UpdatedAt)
	return b, err
}

func collect[T any](ctx context.Context, db Querier, sql string, id string, scan pgx.RowToFunc[T]) ([]T, error) {
	rows, err := db.Query(ctx, sql, id)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, scan)
	if out == nil {
		out = []T{}
	}
	return out, err
}

func jsonOr(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`{}`)
	}
	return raw
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// RunningClocks returns the clocks still counting (running or escalated, with a due time) of
// tenant's open breaches, soonest due first.
func (q Breaches) RunningClocks(ctx context.Context, tenant string) ([]BreachClock, error) {
	rows, err := q.pool.Query(ctx, `
		SELECT c.breach_id, c.rule_id, c.notify, c.due_at, c.status
		FROM breach_clocks c JOIN breaches b ON b.id = c.breach_id
		WHERE b.tenant_id = $1 AND b.status <> 'closed' AND c.status IN ('running', 'escalated') AND c.due_at IS NOT NULL
		ORDER BY c.due_at, c.breach_id, c.rule_id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing the running breach clocks of tenant %s: %w", tenant, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BreachClock, error) {
		var c BreachClock
		err := r.Scan(&c.BreachID, &c.RuleID, &c.Notify, &c.DueAt, &c.Status)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the running breach clocks of tenant %s: %w", tenant, err)
	}
	return out, nil
}
