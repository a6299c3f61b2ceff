package activities

import (
	"time"

	"github.com/lethe-privacy/lethe/internal/domain"
)

// Transition is one step of a request's lifecycle, recorded in the read model, the audit trail
// and on lethe.events by RecordTransition.
type Transition struct {
	// Key makes the record idempotent across activity retries: request id + step number.
	Key        string
	RequestID  string
	TenantID   string
	Type       string
	Status     string
	Extended   bool
	Regime     string
	Country    string
	ReceivedAt time.Time
	DueDate    string // YYYY-MM-DD, "" until the clock starts
	Actor      string
	Action     string // audit action, e.g. "request.approved"
	At         time.Time
	// State is the workflow's snapshot (no subject identifiers), stored for the read model.
	State any
	// Detail is what the audit event records besides the action (reasons, connector names).
	Detail map[string]any
}

// Dispatch asks one connector to perform one action for a request. DispatchCommand publishes
// it and returns pending; the bridge completes the activity from the connector's result.
type Dispatch struct {
	RequestID      string // the request; for a find, the breach
	TenantID       string
	Connector      string
	Action         string
	IdempotencyKey string
	Params         map[string]any
	// ExportLocation is set for access and find: where the connector writes what it read.
	ExportLocation string
	// ExpiryID is set for the purge of one subject whose expiry date passed (RequestID is then
	// the expiry's): the command carries that subject, read from the store.
	ExpiryID string `json:",omitempty"`
}

// Notice asks NotifySubject to tell the subject something (kind is a mail template). The
// subject's address is looked up by request id, so it never travels through workflow history
// more than once.
type Notice struct {
	Key       string
	RequestID string
	TenantID  string
	Kind      string
	Data      map[string]any
}

// CodeRequest asks ResendVerificationCode for a new code for the subject of a request.
type CodeRequest struct {
	Key       string // the audit event's
	RequestID string
	TenantID  string
	// At is when the subject asked, on the clock of the Lethe process that checks the code.
	At time.Time
	// Channel is the channel the subject asked for (email, sms); "" picks as the first code.
	Channel string `json:",omitempty"`
}

// CodeSent is a new code on its way: it works until ExpiresAt.
type CodeSent struct {
	ExpiresAt time.Time
	// Channel is the channel it went by (email, sms).
	Channel string `json:",omitempty"`
}

// Error types of ResendVerificationCode, for the callers of the workflow's resend update.
const (
	ErrTooManyCodes    = "too_many_codes"       // details: seconds until a code may be sent again
	ErrNotAwaitingCode = "identity_not_pending" // the request no longer waits for identity
	ErrNoEmail         = "no_email"
	ErrMailUnavailable = "mail_unavailable"
	// ErrChannelUnavailable: the channel asked for is not one (ErrNoPhone and ErrNoTexts say
	// why a known channel cannot reach the subject).
	ErrChannelUnavailable = "channel_unavailable"
	ErrNoPhone            = "no_phone"
	ErrNoTexts            = "no_texts" // the tenant sends no texts (tenants[].sms)
	// ErrTextRefused: Twilio refused the text for its recipient (invalid number, STOP).
	ErrTextRefused     = "text_refused"
	ErrTextUnavailable = "text_unavailable"
)

// Reminder is a deadline reminder or an overdue escalation for staff and the DPO.
type Reminder struct {
	Key       string
	RequestID string
	TenantID  string
	Kind      string // "reminder" or "overdue"
	DueDate   string
	At        time.Time
}

// Failure is an activity that failed for good, for ReportFailure to surface. It is about a
// request or, with BreachID, a breach.
type Failure struct {
	Key       string
	RequestID string
	BreachID  string
	TenantID  string
	Activity  string // e.g. "Remind"
	Reason    string // the error text, free of personal data
	At        time.Time
}

// ExportRequest asks BuildExport to package a subject's records for download.
type ExportRequest struct {
	RequestID string
	TenantID  string
	Kind      string // access or portability
	Sources   map[string][]domain.ExportRef
	At        time.Time
}

// ExportPackage is the stored package.
type ExportPackage struct {
	URI    string
	SHA256 string
	Bytes  int64
}

// ConsentChange records a consent decision in the consent ledger.
type ConsentChange struct {
	Key       string
	RequestID string
	TenantID  string
	Purpose   string
	Granted   bool
	Source    string
	At        time.Time
}
