// Package consent reads the consent ledger back: the subject of GET /v1/consent, the
// lethe.consent.state event published for every change the ledger records, and the check a
// connector instance declaring a consent purpose puts before each notify. The ledger itself,
// and the one derivation of a purpose's current state from it, are store.Consent and
// store.ConsentOf.
package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

var (
	refPattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	// emailPattern is as loose as the OpenAPI document's: one @, nothing blank around it.
	emailPattern = regexp.MustCompile(`^[^@\s\x00]+@[^@\s\x00]+$`)
)

// ErrSubject is a subject that is neither a reference, an email address nor an E.164 number.
var ErrSubject = errors.New("subject must be a subject reference (64 hex digits), an email address or a phone number in E.164 form (+4915112345678)")

// Ref is the ledger's reference of a subject named by its reference, its email address or its
// phone number (E.164), as GET /v1/consent takes it: the keyed hash the ledger and the audit
// trail hold (crypto.SubjectHash).
func Ref(key, tenant, subject string) (string, error) {
	switch {
	case refPattern.MatchString(subject):
		return subject, nil
	case phonePattern.MatchString(subject):
		return crypto.SubjectHash(key, tenant, "", subject, ""), nil
	case emailPattern.MatchString(subject):
		return crypto.SubjectHash(key, tenant, subject, "", ""), nil
	}
	return "", ErrSubject
}

// Event is a lethe.consent.state v1 message (schemas/consent-state.schema.json).
type Event struct {
	Schema     string    `json:"schema"`
	Version    int       `json:"version"`
	ID         string    `json:"id"`
	TenantID   string    `json:"tenant_id"`
	SubjectRef string    `json:"subject_ref"`
	Purpose    string    `json:"purpose"`
	Granted    bool      `json:"granted"`
	DecidedBy  string    `json:"decided_by,omitempty"`
	Change     Change    `json:"change"`
	OccurredAt time.Time `json:"occurred_at"`
}

// Change is the change an Event reports.
type Change struct {
	Granted   bool      `json:"granted"`
	Source    string    `json:"source"`
	ChangedAt time.Time `json:"changed_at"`
	RequestID string    `json:"request_id,omitempty"`
}

// NewEvent is the event of change c, which leads to state s of its purpose.
func NewEvent(c store.ConsentChange, s store.ConsentState) Event {
	return Event{
		Schema: schemas.ConsentState, Version: 1, ID: "consent:" + strconv.FormatInt(c.ID, 10),
		TenantID: c.TenantID, SubjectRef: c.SubjectHash, Purpose: c.Purpose, Granted: s.Granted, DecidedBy: s.DecidedBy,
		Change:     Change{Granted: c.Granted, Source: c.Source, ChangedAt: c.ChangedAt.UTC(), RequestID: c.RequestID},
		OccurredAt: c.RecordedAt.UTC(),
	}
}

// Relay publishes the lethe.consent.state event of every change the ledger records, whoever
// recorded it (intake, an objection, a connector's STOP reply): PostgreSQL queues each new
// ledger row (migration 0029) and the relay publishes and dequeues it, at least once. Several
// relays (bridge replicas) share the queue.
type Relay struct {
	Store *store.Store
	Bus   *bus.Bus
	Log   *slog.Logger
	// Every is how long the relay waits when nothing is queued (default one second).
	Every time.Duration
}

// RelayBatch is how many changes one transaction publishes.
const RelayBatch = 100

// Run publishes until ctx ends. A failed publish is logged and tried again after Every.
func (r *Relay) Run(ctx context.Context) error {
	every := r.Every
	if every <= 0 {
		every = time.Second
	}
	for {
		_, err := r.Store.Consent().Publish(ctx, RelayBatch, r.publish)
		if err == nil {
			continue // there may be more
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, store.ErrNothingQueued) {
			r.Log.Error("publishing consent state events", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

func (r *Relay) publish(ctx context.Context, c store.ConsentChange, s store.ConsentState) error {
	err := r.Bus.Publish(ctx, bus.TopicEvents, c.SubjectHash, NewEvent(c, s))
	if bus.IsInvalid(err) {
		// A row no event can carry (say, a purpose outside the schema) must not hold up the
		// queue; the ledger keeps it and the state still derives from it.
		r.Log.Error("a consent change cannot be published as lethe.consent.state", "ledger_id", c.ID, "tenant_id", c.TenantID, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("publishing the consent state of ledger entry %d: %w", c.ID, err)
	}
	return nil
}
