// Package intake reads what other services publish to Lethe over Kafka: data-subject requests
// on lethe.requests.intake, breaches on lethe.breaches.intake and consent changes on
// lethe.consent.changes.
//
// # Requests
//
// Publish a lethe.request.intake v1 message (schemas/request-intake.schema.json), keyed by
// anything stable for the subject (e.g. the request id). Lethe records the request and starts
// its workflow, and commits the message only after the start succeeded.
//
//   - Idempotency: send request_id. The same request_id twice is one request, also long after
//     its workflow has ended (the requests table remembers it); the first message wins and later
//     ones are acknowledged and ignored. Without request_id Lethe assigns a fresh id, so a
//     message redelivered after a crash between the start and the commit can become a second
//     request. Lethe does not derive ids from Kafka offsets: a recreated topic starts its offsets
//     again and would make new requests look like old ones.
//   - channel defaults to "kafka"; set "post" or "phone" when a service enters a request that
//     arrived that way, with received_at when it really arrived (deadlines count from it).
//   - Requests from Kafka are not identity-verified: the subject confirms by a code (email or text) as on
//     the API. note is accepted by the schema but not kept.
//
// # Breaches
//
// Publish a lethe.breach.intake v1 message (schemas/breach-intake.schema.json), e.g. from a
// security tool, with the time the tenant became aware of the breach. Lethe opens the breach
// (internal/breaches) and commits the message once its workflow exists. breach_id is required:
// the same breach_id twice is one breach, and an id another tenant's breach holds goes to the
// DLQ.
//
// # Consent changes
//
// Publish a lethe.consent.change v1 message (schemas/consent-change.schema.json). Each change
// is appended to the consent ledger with the subject kept only as a keyed hash. The ledger key is
// a hash of tenant, subject, purpose, granted and changed_at, so the same change delivered twice
// (a redelivery, or a producer that retried) is recorded once. When a purpose starting with
// "marketing" is withdrawn, Lethe also starts an objection request for the subject, whose id is
// derived from that key: one withdrawal, one objection. The objection counts as
// identity-verified because the publishing system already knows the subject; Kafka ACLs on
// lethe.consent.changes are what make that trust safe.
//
// # Dead letters
//
// Messages that can never succeed go to lethe.dlq with the reason and are committed: not JSON,
// another schema, a schema violation, an unknown tenant, values Lethe rejects beyond the schema
// (e.g. received_at in the future, changes on a type other than rectification), or a request_id
// another tenant already uses. Reasons name the field, never its value. Anything else
// (PostgreSQL or Temporal unavailable) is retried with backoff until it succeeds: the partition
// waits rather than losing a request.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

// Consumer groups; replicas of one group share the topic's partitions.
const (
	GroupRequests = "lethe-intake"
	GroupBreaches = "lethe-breach-intake"
	GroupConsent  = "lethe-consent"
)

// Channel is the channel recorded for requests that name none.
const Channel = "kafka"

// handleTimeout bounds one attempt, so a hung dependency becomes a retry, not a stuck partition.
const handleTimeout = 30 * time.Second

// Intake consumes the intake and consent topics. It is safe for concurrent use.
type Intake struct {
	Bus      *bus.Bus
	Requests *requests.Service
	// Breaches opens the breaches of lethe.breaches.intake; nil leaves that topic unread.
	Breaches *breaches.Service
	Store    *store.Store
	// SigningKey keys the consent ledger's subject hashes (secrets.signing_key).
	SigningKey string
	Log        *slog.Logger
	Now        func() time.Time
}

// Run consumes every topic until ctx ends or one consumer fails.
func (i *Intake) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runs := []func(context.Context) error{i.RunRequests, i.RunConsent}
	if i.Breaches != nil {
		runs = append(runs, i.RunBreaches)
	}
	errc := make(chan error, len(runs))
	for _, run := range runs {
		go func() { errc <- run(ctx) }()
	}
	err := <-errc
	cancel() // one consumer stopped: stop the others, so the process restarts whole
	for range runs[1:] {
		err = errors.Join(err, <-errc)
	}
	return err
}

// RunBreaches consumes lethe.breaches.intake until ctx ends.
func (i *Intake) RunBreaches(ctx context.Context) error {
	if i.Bus == nil || i.Breaches == nil {
		return errors.New("breach intake needs the bus and the breach service")
	}
	return i.Bus.Consume(ctx, options(GroupBreaches, bus.TopicBreachIntake, schemas.BreachIntake), i.HandleBreach)
}

// breachMessage is a lethe.breach.intake v1 message.
type breachMessage struct {
	BreachID     string                  `json:"breach_id"`
	TenantID     string                  `json:"tenant_id"`
	Title        string                  `json:"title"`
	AwareAt      time.Time               `json:"aware_at"`
	DeterminedAt *time.Time              `json:"determined_at"`
	Affected     []breachclock.Residents `json:"affected"`
	Nature       string                  `json:"nature"`
	ReportedBy   string                  `json:"reported_by"`
}

// HandleBreach opens one breach: nil when it is open (new or the same one again), bus.Invalid
// when it never can be, any other error to be retried.
func (i *Intake) HandleBreach(ctx context.Context, m bus.Message) error {
	var msg breachMessage
	if err := json.Unmarshal(m.Value, &msg); err != nil {
		return bus.Invalid(fmt.Errorf("decoding breach: %w", err))
	}
	o := breaches.Opening{BreachID: msg.BreachID, TenantID: msg.TenantID, Title: msg.Title, AwareAt: msg.AwareAt,
		DeterminedAt: msg.DeterminedAt, Affected: msg.Affected, OpenedBy: "kafka: " + msg.ReportedBy}
	if msg.Nature != "" {
		o.Content = &store.Art33{Nature: msg.Nature}
	}
	ctx, cancel := context.WithTimeout(ctx, handleTimeout)
	defer cancel()
	id, err := i.Breaches.Open(ctx, o)
	switch {
	case err == nil:
		i.log().Info("breach opened from Kafka", "breach_id", id, "tenant_id", msg.TenantID)
		return nil
	case errors.Is(err, breaches.ErrDuplicate):
		return nil
	case errors.Is(err, breaches.ErrInvalid), errors.Is(err, breaches.ErrRejected):
		return bus.Invalid(err)
	}
	return fmt.Errorf("opening breach from %s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err)
}

// RunRequests consumes lethe.requests.intake until ctx ends.
func (i *Intake) RunRequests(ctx context.Context) error {
	if err := i.check(false); err != nil {
		return err
	}
	return i.Bus.Consume(ctx, options(GroupRequests, bus.TopicIntake, schemas.RequestIntake), i.HandleRequest)
}

// RunConsent consumes lethe.consent.changes until ctx ends.
func (i *Intake) RunConsent(ctx context.Context) error {
	if err := i.check(true); err != nil {
		return err
	}
	return i.Bus.Consume(ctx, options(GroupConsent, bus.TopicConsent, schemas.ConsentChange), i.HandleConsent)
}

func options(group, topic, schema string) bus.ConsumerOptions {
	// Transient failures never dead-letter: a request lost to an outage is worse than a
	// partition that waits. Permanent ones are marked bus.Invalid and leave at once.
	return bus.ConsumerOptions{Group: group, Topic: topic, Schemas: []string{schema}, MaxAttempts: math.MaxInt}
}

func (i *Intake) check(consent bool) error {
	switch {
	case i.Bus == nil || i.Requests == nil || i.Store == nil:
		return errors.New("intake needs the bus, the request service and the store")
	case consent && i.SigningKey == "":
		return errors.New("secrets.signing_key is not set: the consent ledger needs it to hash subjects")
	}
	return nil
}

// requestMessage is a lethe.request.intake v1 message.
type requestMessage struct {
	RequestID  string             `json:"request_id"`
	TenantID   string             `json:"tenant_id"`
	Type       string             `json:"type"`
	Subject    connectors.Subject `json:"subject"`
	ReceivedAt *time.Time         `json:"received_at"`
	Regime     string             `json:"regime"`
	Country    string             `json:"country"`
	Channel    string             `json:"channel"`
	Changes    map[string]string  `json:"changes"` // strings only, as the schema says
}

// HandleRequest submits one intake message: nil when the request exists (new or duplicate),
// bus.Invalid when it never can, any other error to be retried.
func (i *Intake) HandleRequest(ctx context.Context, m bus.Message) error {
	sub, err := i.decodeRequest(m.Value)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, handleTimeout)
	defer cancel()
	id, err := i.Requests.Submit(ctx, sub)
	switch {
	case err == nil:
		i.log().Info("request submitted from Kafka", "request_id", id, "tenant_id", sub.TenantID, "type", sub.Type)
		return nil
	case errors.Is(err, requests.ErrDuplicate):
		// Submit also reports another tenant's id as a duplicate; for this sender that would be
		// a request silently dropped, so it goes to the DLQ instead.
		if err := i.sameTenant(ctx, sub.RequestID, sub.TenantID); err != nil {
			return err
		}
		i.log().Debug("duplicate request ignored", "request_id", sub.RequestID, "tenant_id", sub.TenantID)
		return nil
	case errors.Is(err, requests.ErrInvalid):
		return bus.Invalid(err)
	}
	return fmt.Errorf("submitting request from %s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err)
}

// decodeRequest turns a validated intake message into a submission; its errors are bus.Invalid.
func (i *Intake) decodeRequest(value []byte) (requests.Submission, error) {
	var msg requestMessage
	if err := json.Unmarshal(value, &msg); err != nil {
		return requests.Submission{}, bus.Invalid(fmt.Errorf("decoding request: %w", err))
	}
	sub := requests.Submission{
		RequestID: msg.RequestID, TenantID: msg.TenantID, Type: msg.Type, Subject: msg.Subject,
		ReceivedAt: i.now(), Channel: msg.Channel, Regime: msg.Regime, Country: msg.Country,
		// The producer is a trusted service: refusing its message would lose a request, so
		// intake only counts against the subject's limits on the other surfaces.
		CountOnly: true,
	}
	if sub.Channel == "" {
		sub.Channel = Channel
	}
	if msg.ReceivedAt != nil {
		sub.ReceivedAt = *msg.ReceivedAt
	}
	if len(msg.Changes) > 0 {
		sub.Changes = msg.Changes
	}
	return sub, nil
}

func (i *Intake) sameTenant(ctx context.Context, id, tenant string) error {
	owner, err := i.Store.Requests().Tenant(ctx, id)
	if err != nil {
		return err
	}
	if owner != tenant {
		return bus.Invalid(errors.New("request_id is already used by another tenant's request"))
	}
	return nil
}

// Consent is one consent change: a lethe.consent.change v1 message, or one from outside Kafka
// (a Twilio STOP reply).
type Consent struct {
	TenantID  string             `json:"tenant_id"`
	Subject   connectors.Subject `json:"subject"`
	Purpose   string             `json:"purpose"`
	Granted   bool               `json:"granted"`
	ChangedAt time.Time          `json:"changed_at"`
	Source    string             `json:"source"`
	// Event, when set, identifies the change at its source (Twilio's MessageSid), so the same
	// event delivered twice is one change; else the change is identified by its contents.
	Event string `json:"-"`
}

// HandleConsent records one consent change from lethe.consent.changes.
func (i *Intake) HandleConsent(ctx context.Context, m bus.Message) error {
	c, err := i.decodeConsent(m.Value)
	if err != nil {
		return err
	}
	if err := i.record(ctx, c); err != nil {
		return fmt.Errorf("consent change from %s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return nil
}

// RecordConsent records one consent change and, for a marketing withdrawal, starts the
// objection. Both steps are idempotent, so a retry after either one failed is safe. A change
// Lethe cannot act on is bus.Invalid and records nothing.
func (i *Intake) RecordConsent(ctx context.Context, msg Consent) error {
	c, err := i.checkConsent(msg)
	if err != nil {
		return err
	}
	return i.record(ctx, c)
}

func (i *Intake) record(ctx context.Context, c consentChange) error {
	msg, hash, key, objection := c.msg, c.hash, c.key, c.objection
	ctx, cancel := context.WithTimeout(ctx, handleTimeout)
	defer cancel()
	err := i.Store.Consent().Record(ctx, store.ConsentChange{
		Key: key, TenantID: msg.TenantID, SubjectHash: hash, Purpose: msg.Purpose, Granted: msg.Granted, Source: msg.Source, ChangedAt: msg.ChangedAt,
	})
	if err != nil {
		return fmt.Errorf("recording the consent change: %w", err)
	}
	if objection == nil {
		return nil
	}
	id, err := i.Requests.Submit(ctx, *objection)
	switch {
	case err == nil:
		i.log().Info("objection started for a marketing withdrawal", "request_id", id, "tenant_id", msg.TenantID, "purpose", msg.Purpose)
		return nil
	case errors.Is(err, requests.ErrDuplicate):
		return nil
	case errors.Is(err, requests.ErrInvalid):
		return bus.Invalid(fmt.Errorf("objection for the withdrawal: %w", err))
	}
	return fmt.Errorf("starting the objection: %w", err)
}

// consentChange is a consent change with its ledger key and, for a marketing withdrawal, the
// objection it starts.
type consentChange struct {
	msg       Consent
	hash, key string
	objection *requests.Submission
}

// decodeConsent decodes and checks a validated consent message; its errors are bus.Invalid.
func (i *Intake) decodeConsent(value []byte) (consentChange, error) {
	var msg Consent
	if err := json.Unmarshal(value, &msg); err != nil {
		return consentChange{msg: msg}, bus.Invalid(fmt.Errorf("decoding consent change: %w", err))
	}
	return i.checkConsent(msg)
}

// checkConsent gives a consent change its ledger key and objection; its errors are bus.Invalid.
func (i *Intake) checkConsent(msg Consent) (consentChange, error) {
	c := consentChange{msg: msg}
	if _, ok := i.Requests.Cfg.Tenant(msg.TenantID); !ok {
		return c, bus.Invalid(errors.New("unknown tenant"))
	}
	s := msg.Subject
	c.hash = crypto.SubjectHash(i.SigningKey, msg.TenantID, s.Email, s.Phone, s.CustomerID)
	c.key = ConsentKey(msg.TenantID, c.hash, msg.Purpose, msg.Granted, msg.ChangedAt)
	if msg.Event != "" {
		c.key = ConsentKey(msg.TenantID, c.hash, msg.Purpose, msg.Granted, time.Time{}) + ":" + msg.Source + ":" + msg.Event
	}
	if !Withdraws(msg.Purpose, msg.Granted) {
		return c, nil
	}
	received := msg.ChangedAt
	if now := i.now(); received.After(now) {
		received = now // the sender's clock runs ahead; the request cannot arrive later than now
	}
	c.objection = &requests.Submission{
		RequestID: ObjectionID(c.key), TenantID: msg.TenantID, Type: domain.TypeObjection,
		Subject: s, ReceivedAt: received, Channel: Channel, IdentityVerified: true, CountOnly: true,
	}
	// Checked before the ledger write, so a withdrawal Lethe cannot act on leaves no trace
	// that suggests it did.
	if err := i.Requests.Validate(c.objection); err != nil {
		return c, bus.Invalid(fmt.Errorf("objection for the withdrawal: %w", err))
	}
	return c, nil
}

// Withdraws reports whether a consent change withdraws marketing consent, which starts an
// objection.
func Withdraws(purpose string, granted bool) bool {
	return !granted && strings.HasPrefix(purpose, "marketing")
}

// ConsentKey is the consent ledger's event key of a change: the same change always has the same
// key, whichever message carried it. subjectHash is crypto.SubjectHash of the subject, so the
// key holds no identifier.
func ConsentKey(tenant, subjectHash, purpose string, granted bool, changedAt time.Time) string {
	h := sha256.New()
	for _, part := range []string{tenant, subjectHash, purpose, strconv.FormatBool(granted), changedAt.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "consent:" + hex.EncodeToString(h.Sum(nil))
}

// ObjectionID is the request id of the objection a withdrawal starts, derived from its ledger
// key so a redelivered withdrawal finds the objection it already started.
func ObjectionID(consentKey string) string {
	sum := sha256.Sum256([]byte(consentKey))
	return "C-" + strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:10]), "=")
}

func (i *Intake) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func (i *Intake) log() *slog.Logger {
	if i.Log != nil {
		return i.Log
	}
	return slog.Default()
}
