package domain

import (
	"slices"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
)

// Request types.
const (
	TypeAccess        = "access"
	TypePortability   = "portability"
	TypeRectification = "rectification"
	TypeErasure       = "erasure"
	TypeRestriction   = "restriction"
	TypeObjection     = "objection"
)

// RequestTypes lists every request type.
var RequestTypes = []string{TypeAccess, TypePortability, TypeRectification, TypeErasure, TypeRestriction, TypeObjection}

// Request statuses.
const (
	StatusReceived        = "received"
	StatusIdentityPending = "identity_pending"
	StatusPendingApproval = "pending_approval"
	StatusBlocked         = "blocked"
	StatusInProgress      = "in_progress"
	StatusCompleted       = "completed"
	StatusDenied          = "denied"
	StatusFailed          = "failed"
	StatusCanceled        = "canceled"
)

// TerminalStatuses are the statuses that end a request.
func TerminalStatuses() []string { return []string{StatusCompleted, StatusDenied, StatusCanceled} }

// Terminal reports whether a status ends the request.
func Terminal(status string) bool { return slices.Contains(TerminalStatuses(), status) }

// ConnectorRef is a connector the request fans out to, with what it can do.
type ConnectorRef struct {
	Name         string
	Capabilities []string
}

// Has reports whether the connector supports action.
func (c ConnectorRef) Has(action string) bool {
	for _, k := range c.Capabilities {
		if k == action {
			return true
		}
	}
	return false
}

// Policy is the tenant's policy for this request, resolved when the request is submitted so
// that a running request keeps the rules it started with.
type Policy struct {
	Regime   string
	Country  string
	TimeZone string
	// ClockStart is "receipt" (default) or "verification".
	ClockStart string
	// ManualApproval requires a staff decision before any work starts.
	ManualApproval bool
	// SlackApproval asks for that decision in the tenant's Slack channel too.
	SlackApproval bool
	// BlockedErasure is "wait" (re-check until clear or the deadline nears) or "close".
	BlockedErasure string
	// RecheckEvery is how often a blocked erasure is re-checked (default one day).
	RecheckEvery time.Duration
	// CloseBlockedBefore closes a still-blocked erasure this long before the due date, so the
	// subject gets an answer in time (default two days).
	CloseBlockedBefore time.Duration
	// Reminders are offsets before the due date at which staff are reminded.
	Reminders []time.Duration
	// IdentityTimeout ends a request whose subject never verified (default 14 days).
	IdentityTimeout time.Duration
	// RetryWindow is how long a failed request waits for staff to retry (default 30 days).
	RetryWindow time.Duration
	// ConnectorTimeout bounds one connector action, retries included (default 24 hours).
	ConnectorTimeout time.Duration
	Connectors       []ConnectorRef
	// ExportBase is the export store URI prefix under which this request's files go.
	ExportBase string
	// ExportExpiry is how long a completed request's export is kept (default 30 days).
	ExportExpiry time.Duration
}

// Step is one entry of the request's timeline.
type Step struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Note   string    `json:"note,omitempty"`
}

// ConnectorOutcome is what one connector did for one action.
type ConnectorOutcome struct {
	Connector string  `json:"connector"`
	Action    string  `json:"action"`
	Status    string  `json:"status"` // pending, succeeded, failed
	Error     string  `json:"error,omitempty"`
	Output    *Output `json:"output,omitempty"`
}

// RequestState is the request as the status query and the read model see it. It holds no
// subject identifiers.
type RequestState struct {
	RequestID          string             `json:"request_id"`
	TenantID           string             `json:"tenant_id"`
	Type               string             `json:"type"`
	Status             string             `json:"status"`
	Extended           bool               `json:"extended"`
	ExtensionReason    string             `json:"extension_reason,omitempty"`
	ReceivedAt         time.Time          `json:"received_at"`
	ClockStartedAt     *time.Time         `json:"clock_started_at,omitempty"`
	DueDate            string             `json:"due_date,omitempty"`
	IdentityVerifiedAt *time.Time         `json:"identity_verified_at,omitempty"`
	ApprovedBy         string             `json:"approved_by,omitempty"`
	DenialReason       string             `json:"denial_reason,omitempty"`
	Blocks             []connectors.Block `json:"blocks,omitempty"`
	Connectors         []ConnectorOutcome `json:"connectors,omitempty"`
	Export             *ExportInfo        `json:"export,omitempty"`
	Steps              []Step             `json:"steps"`
	// Closed is set when the workflow closed without finishing the request (status failed);
	// FailureReason then says why, for the DPO.
	Closed        bool   `json:"closed,omitempty"`
	FailureReason string `json:"failure_reason,omitempty"`
	// InformationRequests are the questions staff emailed the subject.
	InformationRequests []InformationRequest `json:"information_requests,omitempty"`
}

// InformationRequest is one question staff asked the subject about their request.
type InformationRequest struct {
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Question string    `json:"question"`
}

// ExportInfo is the stored export package.
type ExportInfo struct {
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}
