package mail

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"
)

// MaxBatch is the most recipients one batch message may have (Mailgun's limit per call).
const MaxBatch = mailgun.MaxNumberOfRecipients

// BatchSender sends one notice to many people in one provider call, each seeing only their own
// address. Like Sender it does not retry, and it is safe for concurrent use.
type BatchSender interface {
	// SendBatch renders the notice once and sends it to every recipient of b, returning the
	// provider's message id. Mailgun has no idempotency key: a call whose answer is lost may
	// have been accepted (see Accepted).
	SendBatch(ctx context.Context, b Batch) (messageID string, err error)
	// Accepted looks for the message the provider accepted since since for recipient with the
	// user variable key set to value, and returns its id; found is false if there is none.
	Accepted(ctx context.Context, recipient, key, value string, since time.Time) (messageID string, found bool, err error)
}

// Batch is one notice to up to MaxBatch people.
type Batch struct {
	Notice // Kind, Tenant, Language and Data; To is not used
	To     []BatchRecipient
	// Variables are user variables of the message, the same for every recipient, e.g. the
	// breach and batch it belongs to: delivery events carry them back.
	Variables map[string]string
}

// BatchRecipient is one person of a batch. ID is theirs alone: their delivery events carry it
// back as the user variable RecipientVariable, so events need not name the address.
type BatchRecipient struct {
	Address string
	ID      string
}

// RecipientVariable is the user variable holding each recipient's own ID in a batch message;
// BreachVariable names the breach of a breach notice.
const (
	RecipientVariable = "lethe-recipient"
	BreachVariable    = "lethe-breach-id"
)

// ValidAddress reports whether s is a bare email address a batch can carry.
func ValidAddress(s string) bool {
	a, err := netmail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == "" && len(s) <= 254
}

var _ BatchSender = (*Mailgun)(nil)

// SendBatch sends b as one Mailgun message with recipient variables, which makes Mailgun send
// each recipient their own copy with only their address in To.
func (m *Mailgun) SendBatch(ctx context.Context, b Batch) (string, error) {
	if len(b.To) == 0 || len(b.To) > MaxBatch {
		return "", &PermanentError{Kind: b.Kind, Err: fmt.Errorf("a batch has 1 to %d recipients, not %d", MaxBatch, len(b.To))}
	}
	r, err := Render(b.Notice)
	if err != nil {
		return "", &PermanentError{Kind: b.Kind, Err: err}
	}
	from := (&netmail.Address{Name: strings.TrimSpace(b.Tenant.Name), Address: m.from}).String()
	msg := mailgun.NewMessage(from, r.Subject, r.Text)
	msg.SetHTML(r.HTML)
	for _, to := range b.To {
		if !ValidAddress(to.Address) {
			return "", &PermanentError{Kind: b.Kind, Err: errors.New("a recipient address of the batch is not valid")}
		}
		if err := msg.AddRecipientAndVariables(to.Address, map[string]any{"id": to.ID}); err != nil {
			return "", &PermanentError{Kind: b.Kind, Err: err}
		}
	}
	if err := msg.AddTag(string(b.Kind)); err != nil {
		return "", &PermanentError{Kind: b.Kind, Err: fmt.Errorf("tagging message: %w", err)}
	}
	vars := map[string]string{RecipientVariable: "%recipient.id%"}
	for k, v := range b.Variables {
		vars[k] = v
	}
	for k, v := range vars {
		if err := msg.AddVariable(k, v); err != nil {
			return "", &PermanentError{Kind: b.Kind, Err: fmt.Errorf("adding variable %s: %w", k, err)}
		}
	}
	if c := strings.TrimSpace(b.Tenant.ContactEmail); c != "" {
		msg.SetReplyTo(c)
	}
	hint := &retryHint{}
	_, id, err := m.mg.Send(context.WithValue(ctx, retryHintKey{}, hint), msg)
	if err != nil {
		return "", classify(ctx, b.Kind, err, hint.get())
	}
	return strings.Trim(id, "<>"), nil
}

// Accepted asks Mailgun's events API for the accepted events of recipient since since and
// returns the message id of the one whose user variable key is value. Mailgun stores events
// within seconds, but does not promise when: callers wait before they trust a "not found".
func (m *Mailgun) Accepted(ctx context.Context, recipient, key, value string, since time.Time) (string, bool, error) {
	it := m.mg.ListEvents(&mailgun.ListEventOptions{
		Begin: since, ForceAscending: true, Limit: 300,
		Filter: map[string]string{"event": "accepted", "recipient": recipient},
	})
	var page []mailgun.Event
	for it.Next(ctx, &page) {
		for _, e := range page {
			a, ok := e.(*events.Accepted)
			if !ok {
				continue
			}
			if vars, ok := a.UserVariables.(map[string]any); ok && vars[key] == value {
				return strings.Trim(a.Message.Headers.MessageID, "<>"), true, nil
			}
		}
	}
	if err := it.Err(); err != nil {
		return "", false, classify(ctx, KindBreachNotification, err, 0)
	}
	return "", false, nil
}

// NotQueued reports whether a failed send certainly queued nothing: it was refused before it
// left, or the provider answered with an error status. Without an answer (a timeout, a lost
// connection) the message may have been accepted, and sending it again could duplicate it.
func NotQueued(err error) bool {
	var t *TransientError
	return IsPermanent(err) || errors.As(err, &t) && t.Status != 0
}
