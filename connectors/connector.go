// Package connectors is the SDK for the systems that hold personal data.
//
// A connector implements the base Connector interface plus one optional role interface per
// thing it can do (Accessor, Eraser, Rectifier, Restricter, BlockChecker, Notifier, Finder,
// Purger). It registers itself from init() with MustRegister, declaring those capabilities;
// Open refuses a connector whose declared capabilities differ from the interfaces it implements.
//
// # Contract shared by every role
//
//   - Idempotency: each call carries a Task whose Key is stable across retries of the same
//     work (request + connector + action). Performing the same Key twice must have the effect
//     of performing it once; the second call reports that the work was already done
//     (AlreadyApplied) instead of failing.
//   - Retries: Temporal retries, through the runner. A connector makes one attempt per call and
//     never loops or sleeps to retry internally. It classifies its failure instead: an error
//     wrapped with Permanent is not retried; one wrapped with RetryAfter is retried no sooner
//     than the delay; any other error is treated as transient and retried with backoff.
//   - Permanent failures are those a retry cannot fix: invalid parameters, a subject that is
//     ambiguous, configuration the system rejects, a subject blocked from erasure (see Blocked).
//     Lost connections, timeouts, deadlocks and rate limits are not permanent.
//   - Cancellation: calls return promptly once ctx is done, with an error that wraps ctx.Err().
//   - Thread safety: a Connector is used by many goroutines at once; every method must be safe
//     for concurrent use. Tasks with different keys may run concurrently for the same subject.
//   - Size: results that grow with the subject's data (access exports, found subjects) are
//     streamed to a sink as they are read, never collected in memory and returned whole.
//   - Personal data never appears in errors or logs; errors name tables, fields and codes only.
package connectors

import (
	"context"
	"errors"
	"fmt"
)

// Category is the kind of personal data a field holds; exports and the Art. 15 summary group
// by it.
type Category string

// The personal-data categories. CategoryNone marks fields that are exported for context (a
// booking's status, a service name) but are not personal data on their own.
const (
	CategoryNone      Category = ""
	CategoryContact   Category = "contact"
	CategoryIdentity  Category = "identity"
	CategoryFinancial Category = "financial"
	CategoryHealth    Category = "health" // special category (GDPR Art. 9)
	CategoryMarketing Category = "marketing"
)

// Valid reports whether c is a defined category (including CategoryNone).
func (c Category) Valid() bool {
	switch c {
	case CategoryNone, CategoryContact, CategoryIdentity, CategoryFinancial, CategoryHealth, CategoryMarketing:
		return true
	}
	return false
}

// Subject identifies the data subject. Each connector documents how it matches the fields it
// receives; empty fields are ignored, and a subject with no fields at all is a permanent error.
type Subject struct {
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
	CustomerID string `json:"customer_id,omitempty"`
}

// IsZero reports whether no identifier is set.
func (s Subject) IsZero() bool { return s.Email == "" && s.Phone == "" && s.CustomerID == "" }

// ErrNoSubject is returned (wrapped in Permanent) when a task names no identifier at all.
var ErrNoSubject = errors.New("subject has no identifier (email, phone or customer id)")

// Task is one unit of work, built by the runner from a connector command.
type Task struct {
	// Key is the idempotency key: the same for every retry of the same work
	// (request + connector + action).
	Key       string         `json:"idempotency_key"`
	RequestID string         `json:"request_id"`
	TenantID  string         `json:"tenant_id"`
	Subject   Subject        `json:"subject"`
	Params    map[string]any `json:"params,omitempty"`
}

// Connector is the base interface every connector implements.
type Connector interface {
	// Name is the registered name of the connector.
	Name() string
	// Check verifies that the system is reachable and that the configuration matches it
	// (for example that configured tables and columns exist). A runner calls it before serving.
	Check(ctx context.Context) error
	// Close releases connections. The connector is not used afterwards.
	Close() error
}

// Column describes one field of a streamed table.
type Column struct {
	Name     string   `json:"name"`
	Category Category `json:"category,omitempty"`
}

// Table describes a group of records streamed to a RecordSink.
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
}

// RecordSink receives a subject's records as they are read. The runner backs it with the
// export store. Calls come from one goroutine per Access call, in the order BeginTable,
// WriteRow..., EndTable, repeated per table. A sink error aborts the access and is returned.
type RecordSink interface {
	BeginTable(ctx context.Context, t Table) error
	// WriteRow receives one record, values aligned with the table's columns. The sink must
	// copy what it keeps: the connector may reuse the slice.
	WriteRow(ctx context.Context, values []any) error
	EndTable(ctx context.Context) error
}

// SubjectSink receives subjects found by a Finder, one at a time.
type SubjectSink interface {
	WriteSubject(ctx context.Context, s Subject) error
}

// Accessor streams every record it holds about the subject to the sink.
type Accessor interface {
	Access(ctx context.Context, task Task, sink RecordSink) (AccessResult, error)
}

// AccessResult counts what was streamed.
type AccessResult struct {
	Tables int   `json:"tables"`
	Rows   int64 `json:"rows"`
}

// Eraser erases the subject's personal data, applying the configured strategy per field
// (null, replacement, keyed hash, redaction, row deletion). It must refuse, with Blocked, a
// subject that its BlockChecker would report as blocked. A subject that is not found is not
// an error: there is nothing to erase.
type Eraser interface {
	Erase(ctx context.Context, task Task) (EraseResult, error)
}

// EraseResult reports what an erasure changed, by table.
type EraseResult struct {
	// AlreadyApplied is true when this Task.Key had already been performed; the counts are
	// then those of the original run.
	AlreadyApplied bool             `json:"already_applied"`
	Subjects       int              `json:"subjects"`
	Anonymised     map[string]int64 `json:"anonymised,omitempty"`
	Deleted        map[string]int64 `json:"deleted,omitempty"`
	// Kept lists tables whose rows are retained (e.g. invoices) with identity fields anonymised.
	Kept []string `json:"kept,omitempty"`
}

// Rectifier corrects fields of the subject's records. The changes are in
// Task.Params["changes"] as a map of field name to new value.
type Rectifier interface {
	Rectify(ctx context.Context, task Task) (RectifyResult, error)
}

// RectifyResult reports what a rectification changed.
type RectifyResult struct {
	AlreadyApplied bool             `json:"already_applied"`
	Updated        map[string]int64 `json:"updated,omitempty"`
}

// Restricter marks the subject's records as restricted from processing (Art. 18), or lifts
// the restriction when Task.Params["lift"] is true.
type Restricter interface {
	Restrict(ctx context.Context, task Task) (RestrictResult, error)
}

// RestrictResult reports what a restriction changed.
type RestrictResult struct {
	AlreadyApplied bool  `json:"already_applied"`
	Restricted     bool  `json:"restricted"`
	Rows           int64 `json:"rows"`
}

// Block is one reason the subject cannot be erased now. Code is stable and machine-readable
// (for policy and tests); Reason is written for the subject to read.
type Block struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// BlockChecker tells whether the subject can be erased now. No blocks means erasure may go
// ahead. It has no side effects.
type BlockChecker interface {
	BlockCheck(ctx context.Context, task Task) (BlockResult, error)
}

// BlockResult lists the blocks found; empty when the subject can be erased.
type BlockResult struct {
	Blocks []Block `json:"blocks"`
}

// Channel is how a subject is reached.
type Channel string

// The notification channels.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
)

// Notifier reaches the subject: a confirmation, a breach notice. The message is in
// Task.Params (see MessageFromParams). Sending the same Task.Key twice must send once.
type Notifier interface {
	Notify(ctx context.Context, task Task) (NotifyResult, error)
}

// NotifyResult reports the delivery.
type NotifyResult struct {
	AlreadyApplied bool    `json:"already_applied"`
	Channel        Channel `json:"channel"`
	MessageID      string  `json:"message_id,omitempty"`
}

// Message is the content of a notification, carried in Task.Params.
type Message struct {
	Channel  Channel `json:"channel"`
	Template string  `json:"template,omitempty"`
	Subject  string  `json:"subject,omitempty"`
	Body     string  `json:"body,omitempty"`
}

// MessageFromParams reads a Message from task params "channel", "template", "subject" and
// "body". A missing or unknown channel is a permanent error.
func MessageFromParams(params map[string]any) (Message, error) {
	str := func(k string) (string, error) {
		v, ok := params[k]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", Permanent(fmt.Errorf("param %q must be a string", k))
		}
		return s, nil
	}
	var m Message
	var err error
	ch, err := str("channel")
	if err != nil {
		return m, err
	}
	m.Channel = Channel(ch)
	if m.Channel != ChannelEmail && m.Channel != ChannelSMS {
		return m, Permanent(fmt.Errorf("param \"channel\" must be %q or %q", ChannelEmail, ChannelSMS))
	}
	if m.Template, err = str("template"); err != nil {
		return m, err
	}
	if m.Subject, err = str("subject"); err != nil {
		return m, err
	}
	if m.Body, err = str("body"); err != nil {
		return m, err
	}
	if m.Template == "" && m.Body == "" {
		return m, Permanent(errors.New("notification needs a template or a body"))
	}
	return m, nil
}

// Finder streams the subjects matching criteria in Task.Params (for breach notification).
// Task.Subject is ignored.
type Finder interface {
	Find(ctx context.Context, task Task, sink SubjectSink) (FindResult, error)
}

// FindResult counts the subjects found.
type FindResult struct {
	Subjects int64 `json:"subjects"`
}

// Purger removes records past their retention period, in batches, each batch committed on
// its own so that a long purge neither holds locks nor loses progress. Running it again
// continues where it stopped, and a run after a finished one finds nothing. A task that names
// a subject purges that subject's records (their expiry date passed), once per task key.
// Params "dry_run": true counts what would go and changes nothing.
type Purger interface {
	Purge(ctx context.Context, task Task) (PurgeResult, error)
}

// PurgeResult counts what was removed (or, in a dry run, would be), by retention rule; for a
// subject's purge, by table.
type PurgeResult struct {
	Rows    map[string]int64 `json:"rows"`
	Batches int              `json:"batches"`
	DryRun  bool             `json:"dry_run,omitempty"`
	// More is set when the purge stopped at its max_batches with rows left; the next command
	// passes Cursor, if set, as params "after".
	More   bool   `json:"more,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	// Blocked counts, by rule, the subjects a blocking rule kept from being purged.
	Blocked map[string]int64 `json:"blocked,omitempty"`
	// Subjects is how many records matched the subject of a subject's purge.
	Subjects int `json:"subjects,omitempty"`
}
