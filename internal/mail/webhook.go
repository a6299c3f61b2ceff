package mail

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mailgun/mailgun-go/v4"
)

// Signature is the signature block of a Mailgun webhook request.
type Signature struct {
	Timestamp string `json:"timestamp"`
	Token     string `json:"token"`
	Signature string `json:"signature"`
}

// VerifyWebhook reports whether sig was made with the domain's webhook signing key. It checks
// only the HMAC; the webhook route must also reject old timestamps (see Signature.Fresh) and
// tokens it has seen before.
func VerifyWebhook(signingKey string, sig Signature) bool {
	if signingKey == "" || sig.Timestamp == "" || sig.Token == "" || sig.Signature == "" {
		return false
	}
	// The client is only a carrier for the library's verifier; it makes no calls.
	mg := mailgun.NewMailgun("", "")
	mg.SetWebhookSigningKey(signingKey)
	ok, err := mg.VerifyWebhookSignature(mailgun.Signature{TimeStamp: sig.Timestamp, Token: sig.Token, Signature: sig.Signature})
	return err == nil && ok
}

// Fresh reports whether the signature's timestamp is within window of now, either side.
func (s Signature) Fresh(now time.Time, window time.Duration) bool {
	sec, err := strconv.ParseInt(s.Timestamp, 10, 64)
	if err != nil {
		return false
	}
	d := now.Sub(time.Unix(sec, 0))
	return d <= window && d >= -window
}

// EventType is what happened to a sent message.
type EventType string

// Mailgun's event types.
const (
	EventAccepted     EventType = "accepted"
	EventRejected     EventType = "rejected"
	EventDelivered    EventType = "delivered"
	EventFailed       EventType = "failed"
	EventOpened       EventType = "opened"
	EventClicked      EventType = "clicked"
	EventUnsubscribed EventType = "unsubscribed"
	EventComplained   EventType = "complained"
)

// Event is the part of a Mailgun event Lethe records. It leaves out the recipient and Mailgun's
// delivery message, which may quote the address; the request ID ties the event to its subject.
type Event struct {
	Type      EventType
	ID        string
	Timestamp time.Time
	MessageID string
	// RequestID comes from the lethe-request-id user variable; empty for other mail.
	RequestID string
	// BreachID and Recipient come from a breach notice's lethe-breach-id and lethe-recipient
	// (the person's number in the breach's notice) user variables.
	BreachID, Recipient string
	// Kind is the notice kind, from the message's tag; empty if not one of Lethe's.
	Kind Kind
	// Severity is "permanent" or "temporary" for failed events.
	Severity string
	// Reason is Mailgun's short reason code for failures (e.g. "bounce", "suppress-bounce").
	Reason string
}

// maxWebhookTimestamp is 9999-12-31T23:59:59Z, the last second PostgreSQL and Go's time
// formatting both handle without surprises.
const maxWebhookTimestamp = 253402300799

// ParseWebhook decodes a Mailgun webhook body ({"signature": ..., "event-data": ...}). It does
// not verify the signature; call VerifyWebhook on the result first.
func ParseWebhook(body []byte) (Signature, Event, error) {
	var p struct {
		Signature Signature `json:"signature"`
		Data      struct {
			Event         string         `json:"event"`
			ID            string         `json:"id"`
			Timestamp     float64        `json:"timestamp"`
			Tags          []string       `json:"tags"`
			Severity      string         `json:"severity"`
			Reason        string         `json:"reason"`
			UserVariables map[string]any `json:"user-variables"`
			Message       struct {
				Headers struct {
					MessageID string `json:"message-id"`
				} `json:"headers"`
			} `json:"message"`
		} `json:"event-data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		// json errors quote at most a type or offset, not the body.
		return Signature{}, Event{}, fmt.Errorf("decoding mailgun webhook: %w", err)
	}
	if p.Data.Event == "" {
		return p.Signature, Event{}, errors.New("decoding mailgun webhook: event-data.event is missing")
	}
	// What PostgreSQL cannot store would fail the insert on every redelivery: refuse it here.
	if p.Data.Timestamp < 0 || p.Data.Timestamp > maxWebhookTimestamp {
		return p.Signature, Event{}, errors.New("decoding mailgun webhook: event-data.timestamp is not a Unix time before the year 10000")
	}
	for name, v := range map[string]string{
		"signature.timestamp": p.Signature.Timestamp, "signature.token": p.Signature.Token, "signature.signature": p.Signature.Signature,
		"event-data.event": p.Data.Event, "event-data.id": p.Data.ID, "event-data.severity": p.Data.Severity,
		"event-data.reason": p.Data.Reason, "event-data.message.headers.message-id": p.Data.Message.Headers.MessageID,
	} {
		if strings.ContainsRune(v, 0) {
			return p.Signature, Event{}, fmt.Errorf("decoding mailgun webhook: %s holds a NUL character", name)
		}
	}
	e := Event{
		Type:      EventType(strings.ToLower(p.Data.Event)),
		ID:        p.Data.ID,
		MessageID: strings.Trim(p.Data.Message.Headers.MessageID, "<>"),
		Severity:  p.Data.Severity,
		Reason:    p.Data.Reason,
	}
	if p.Data.Timestamp > 0 {
		sec, frac := math.Modf(p.Data.Timestamp)
		e.Timestamp = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	for name, dst := range map[string]*string{RequestIDVariable: &e.RequestID, BreachVariable: &e.BreachID, RecipientVariable: &e.Recipient} {
		if v, ok := p.Data.UserVariables[name].(string); ok && !strings.ContainsRune(v, 0) {
			*dst = v
		}
	}
	for _, t := range p.Data.Tags {
		if _, ok := specs[Kind(t)]; ok {
			e.Kind = Kind(t)
			break
		}
	}
	return p.Signature, e, nil
}
