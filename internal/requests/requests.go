// Package requests is the one place where data-subject requests are submitted, decided and
// read: the CLI, the HTTP API, MyAccount and Kafka intake all go through it.
package requests

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/deadline"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/links"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// Errors callers map to user-facing answers (HTTP 4xx, CLI messages).
var (
	ErrInvalid   = errors.New("invalid request")
	ErrNotFound  = errors.New("request not found")
	ErrDuplicate = errors.New("request already exists")
	ErrRejected  = errors.New("decision rejected")
	// ErrRateLimited: a rate limit refused the call; limits.RetryAfter(err) says for how long.
	ErrRateLimited = errors.New("rate limited")
)

// Service submits and drives requests. It is safe for concurrent use.
type Service struct {
	Temporal client.Client
	Store    *store.Store
	Cfg      config.Config
	// ExportBase is the export store URI prefix given to the workflows.
	ExportBase string
	Now        func() time.Time

	// The subject's own steps (subject.go). Codes, Links and Exports are built from Cfg and
	// Store when nil. The request workflow sends verification codes.
	Codes   *identity.Codes
	Links   *links.Signer
	Exports exportstore.Store
	// Limits are the rate limits of submissions, code checks and new codes, shared by every
	// surface; nil means none (tools run by staff).
	Limits *limits.Limiter
}

// Submission is a new request as it arrives from any channel.
type Submission struct {
	// RequestID is the caller's id (Kafka intake, host apps); empty means Lethe assigns one.
	RequestID string
	TenantID  string
	Type      string
	Subject   connectors.Subject
	Changes   map[string]string
	// ReceivedAt is when the request really arrived (e.g. by post); zero means now.
	ReceivedAt time.Time
	Channel    string
	// IdentityVerified says the submitter vouches for every identifier given; Proof says who
	// and how (default: the trusted channel itself).
	IdentityVerified bool
	Proof            Proof
	Language         string
	// Regime and Country override the tenant's defaults (e.g. a Californian customer).
	Regime  string
	Country string
	// CountOnly counts the submission against the rate limits without refusing it: Kafka
	// intake, whose producer is trusted and whose refused message would be a request lost.
	CountOnly bool
}

var (
	requestID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	e164      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// Validate checks a submission; errors wrap ErrInvalid and name the field, never its value.
func (s *Service) Validate(sub *Submission) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if _, ok := s.Cfg.Tenant(sub.TenantID); !ok {
		return bad("unknown tenant")
	}
	if sub.RequestID != "" && !requestID.MatchString(sub.RequestID) {
		return bad("request_id must be 1-64 letters, digits, - or _")
	}
	if !slices.Contains(domain.RequestTypes, sub.Type) {
		return bad("type must be one of %s", strings.Join(domain.RequestTypes, ", "))
	}
	sub.Subject.Email = strings.TrimSpace(sub.Subject.Email)
	if sub.Subject == (connectors.Subject{}) {
		return bad("subject needs an email, phone or customer_id")
	}
	if err := domain.CheckIdentifiers(sub.Subject); err != nil {
		return bad("%s", err.Error())
	}
	if sub.Type == domain.TypeRectification && len(sub.Changes) == 0 {
		return bad("a rectification needs changes: the corrected values")
	}
	if sub.Type != domain.TypeRectification && len(sub.Changes) > 0 {
		return bad("changes only belong to a rectification")
	}
	if sub.ReceivedAt.After(s.now().Add(5 * time.Minute)) {
		return bad("received_at is in the future")
	}
	if sub.Regime != "" {
		if _, err := deadline.ParseRegime(sub.Regime); err != nil {
			return bad("regime must be gdpr or ccpa")
		}
	}
	// A country without a holiday calendar would fail the due date inside the workflow, after
	// the request was accepted; refuse it here, where the sender can still fix it.
	if sub.Country != "" {
		c, err := deadline.ParseCountry(sub.Country)
		if err != nil {
			return bad("country must be one of %s (the countries with a public-holiday calendar), or left out for the tenant's", strings.Join(deadline.Countries(), ", "))
		}
		sub.Country = c
	}
	return nil
}

// Submit records a new request and starts its workflow, whose ID is the request ID: the
// same ID submitted twice is one request, even after Temporal has forgotten the workflow,
// because the request row is kept.
func (s *Service) Submit(ctx context.Context, sub Submission) (string, error) {
	if err := s.Validate(&sub); err != nil {
		return "", err
	}
	if err := s.limitSubmit(ctx, sub); err != nil {
		return "", err
	}
	return s.start(ctx, sub)
}

// limitSubmit counts a submission against its tenant, its subject and the client that sent it.
func (s *Service) limitSubmit(ctx context.Context, sub Submission) error {
	if s.Limits == nil {
		return nil
	}
	k := limits.Keys{Tenant: sub.TenantID, Subject: s.SubjectKey(sub.TenantID, sub.Subject), Client: limits.ClientFrom(ctx)}
	if sub.CountOnly {
		return s.Limits.Count(ctx, limits.Submit, k)
	}
	return rateLimited(s.Limits.Take(ctx, limits.Submit, k))
}

// limitRequest counts an action on request id against its tenant, its subject and the client.
// An unknown id still costs the tenant and the client, so ids cannot be probed at speed.
func (s *Service) limitRequest(ctx context.Context, a limits.Action, tenant, id string) error {
	if s.Limits == nil {
		return nil
	}
	subject, err := s.RequestSubjectKey(ctx, tenant, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if lerr := s.Limits.Take(ctx, a, limits.Keys{Tenant: tenant, Subject: subject, Client: limits.ClientFrom(ctx)}); lerr != nil {
		return rateLimited(lerr)
	}
	return err
}

// RetryAfter is how long a call refused with 429 should wait: the limit's own wait, else (a
// code dead after too many wrong tries, which a new code cures at once) a minute to read the
// email.
func RetryAfter(err error) time.Duration {
	if d, ok := limits.RetryAfter(err); ok {
		return d
	}
	return time.Minute
}

func rateLimited(err error) error {
	if _, ok := limits.RetryAfter(err); ok {
		return fmt.Errorf("%w: %w", ErrRateLimited, err)
	}
	return err
}

// start records a validated submission and starts its workflow.
func (s *Service) start(ctx context.Context, sub Submission) (string, error) {
	if sub.RequestID == "" {
		sub.RequestID = newID()
	}
	if sub.ReceivedAt.IsZero() {
		sub.ReceivedAt = s.now()
	}
	tenant, _ := s.Cfg.Tenant(sub.TenantID)
	in := s.input(tenant, sub)

	started, err := s.record(ctx, sub, in)
	if err != nil {
		return "", err
	}
	if started {
		return sub.RequestID, fmt.Errorf("%w: %s", ErrDuplicate, sub.RequestID)
	}
	_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       sub.RequestID,
		TaskQueue:                s.Cfg.Temporal.TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.RequestWorkflow, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return sub.RequestID, fmt.Errorf("%w: %s", ErrDuplicate, sub.RequestID)
	}
	if err != nil {
		return "", fmt.Errorf("starting the request workflow: %w", err)
	}
	if err := s.Store.Requests().MarkStarted(ctx, sub.RequestID); err != nil {
		return "", err
	}
	return sub.RequestID, nil
}

// record writes the request row and Lethe's copy of the subject in one transaction. It
// reports started=true when the request exists and its workflow was already started; a row
// left by a start that failed half-way is reused so the retry completes it.
func (s *Service) record(ctx context.Context, sub Submission, in workflows.RequestInput) (started bool, err error) {
	err = pgx.BeginFunc(ctx, s.Store.Pool, func(tx pgx.Tx) error {
		tenant, wasStarted, err := s.Store.Requests().Lock(ctx, tx, sub.RequestID)
		started = wasStarted
		if err == nil {
			if tenant != sub.TenantID {
				started = true // another tenant's id: never reveal or touch it
			}
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		state, _ := json.Marshal(domain.RequestState{RequestID: sub.RequestID, TenantID: sub.TenantID, Type: sub.Type, Status: domain.StatusReceived, ReceivedAt: sub.ReceivedAt})
		err = s.Store.Requests().Create(ctx, tx, store.RequestRow{
			ID: sub.RequestID, TenantID: sub.TenantID, Type: sub.Type, Status: domain.StatusReceived,
			Regime: in.Policy.Regime, Country: in.Policy.Country, ReceivedAt: sub.ReceivedAt, State: state, Channel: in.Channel,
		})
		if err != nil {
			return err
		}
		var changes any
		if len(sub.Changes) > 0 {
			changes = sub.Changes
		}
		proofs := map[string]Proof{}
		if sub.IdentityVerified {
			p := sub.Proof
			p.Method, p.Actor = cmp.Or(p.Method, "trusted_channel"), cmp.Or(p.Actor, sub.Channel, "api")
			if p.At.IsZero() {
				p.At = s.now().UTC()
			}
			proofs = proofsOf(given(sub.Subject), p)
		}
		return s.Store.Subjects().Create(ctx, tx, store.SubjectRow{
			RequestID: sub.RequestID, TenantID: sub.TenantID, Language: cmp.Or(sub.Language, "en"), Changes: changes, Proofs: proofs,
			Identifiers: store.Identifiers{Email: sub.Subject.Email, Phone: sub.Subject.Phone, CustomerID: sub.Subject.CustomerID},
		})
	})
	if err != nil {
		return false, fmt.Errorf("recording the request: %w", err)
	}
	return started, nil
}

// input resolves the tenant's policy into the workflow input.
func (s *Service) input(t config.Tenant, sub Submission) workflows.RequestInput {
	p := domain.Policy{
		Regime: cmp.Or(sub.Regime, t.Regime), Country: cmp.Or(sub.Country, t.Country),
		TimeZone: cmp.Or(t.TimeZone, "UTC"), ClockStart: t.Policy.ClockStart,
		ManualApproval: t.Policy.NeedsApproval(sub.Type), SlackApproval: t.Slack != nil, BlockedErasure: t.Policy.BlockedErasure,
		ExportBase: s.ExportBase, ExportExpiry: s.Cfg.ExportExpiry(),
		Connectors: s.Connectors(t.ID),
	}
	for _, d := range t.Policy.ReminderDays {
		p.Reminders = append(p.Reminders, time.Duration(d)*24*time.Hour)
	}
	if t.Policy.IdentityTimeoutDays > 0 {
		p.IdentityTimeout = time.Duration(t.Policy.IdentityTimeoutDays) * 24 * time.Hour
	}
	return workflows.RequestInput{
		RequestID: sub.RequestID, TenantID: sub.TenantID, Type: sub.Type,
		ChangedFields: changedFields(sub.Changes), ReceivedAt: sub.ReceivedAt, Channel: cmp.Or(sub.Channel, "api"),
		IdentityVerified: sub.IdentityVerified, Policy: p,
	}
}

// Connectors lists the connector instances bound to the tenant, with their capabilities: a
// request fans out to these only.
func (s *Service) Connectors(tenant string) []domain.ConnectorRef {
	return ConnectorRefs(s.Cfg, tenant)
}

// ConnectorRefs lists the connector instances bound to the tenant, with their capabilities.
func ConnectorRefs(cfg config.Config, tenant string) []domain.ConnectorRef {
	var out []domain.ConnectorRef
	for _, in := range cfg.ConnectorsFor(tenant) {
		ref := domain.ConnectorRef{Name: in.Name}
		for _, c := range in.Capabilities() {
			ref.Capabilities = append(ref.Capabilities, string(c))
		}
		out = append(out, ref)
	}
	return out
}

// Decide sends a human decision (an update) to a request and waits for the workflow to accept
// it. A decision the workflow's validator refuses wraps ErrRejected with the reason.
func (s *Service) Decide(ctx context.Context, tenant, id, update string, arg any) (domain.RequestState, error) {
	if _, err := s.owned(ctx, tenant, id); err != nil {
		return domain.RequestState{}, err
	}
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: update, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return domain.RequestState{}, classify(err)
	}
	var st domain.RequestState
	if err := h.Get(ctx, &st); err != nil {
		return domain.RequestState{}, classify(err)
	}
	return st, nil
}

func classify(err error) error {
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("%w: the request is closed", ErrRejected)
	}
	var app interface{ Message() string }
	if errors.As(err, &app) {
		return fmt.Errorf("%w: %s", ErrRejected, app.Message())
	}
	return err
}

// Get returns the request's current state: live from the workflow while it runs, else the
// last state recorded in the read model.
func (s *Service) Get(ctx context.Context, tenant, id string) (domain.RequestState, error) {
	st, err := s.owned(ctx, tenant, id)
	if err != nil {
		return st, err
	}
	if domain.Terminal(st.Status) || st.Closed {
		return st, nil
	}
	v, err := s.Temporal.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		return st, nil // the read model is at most one step behind
	}
	var live domain.RequestState
	if err := v.Get(&live); err != nil || live.Status == "" {
		return st, nil
	}
	return live, nil
}

// owned reads the recorded state of a request of this tenant; another tenant's request is
// reported as not found.
func (s *Service) owned(ctx context.Context, tenant, id string) (domain.RequestState, error) {
	var st domain.RequestState
	raw, err := s.Store.Requests().State(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return st, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("decoding request %s: %w", id, err)
	}
	return st, nil
}

// Summary is one row of a request listing.
type Summary = store.RequestSummary

// Filter narrows a listing (see store.RequestFilter).
type Filter struct {
	Status    string
	Type      string
	Channel   string
	Outcome   string // a connector result status: pending, succeeded, failed
	Open      bool   // only requests not yet closed
	DueBefore string // YYYY-MM-DD
	Offset    int
	Limit     int
}

// List returns the tenant's requests, soonest due first.
func (s *Service) List(ctx context.Context, tenant string, f Filter) ([]Summary, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	sf := store.RequestFilter{
		TenantID: tenant, Status: f.Status, Type: f.Type, Channel: f.Channel, Outcome: f.Outcome,
		Open: f.Open, Offset: max(f.Offset, 0), Limit: f.Limit,
	}
	if f.DueBefore != "" {
		d, err := deadline.ParseDate(f.DueBefore)
		if err != nil {
			return nil, fmt.Errorf("%w: due_before: %v", ErrInvalid, err)
		}
		sf.DueBefore = d
	}
	return s.Store.Requests().List(ctx, sf)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// newID is a short, unguessable request reference such as R-7K3QF2M9XA.
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "R-" + strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=")
}

func changedFields(changes map[string]string) []string {
	out := make([]string, 0, len(changes))
	for k := range changes {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
