package webhook

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/schemas"
)

// Schema names of the connector's HTTP messages (schemas/webhook-task and webhook-answer).
const (
	TaskSchema   = schemas.WebhookTask
	AnswerSchema = schemas.WebhookAnswer
)

// Task is what Lethe POSTs to the endpoint for one action.
type Task struct {
	Schema         string                `json:"schema"`
	Version        int                   `json:"version"`
	Action         connectors.Capability `json:"action"`
	IdempotencyKey string                `json:"idempotency_key"`
	RequestID      string                `json:"request_id"`
	TenantID       string                `json:"tenant_id"`
	Subject        connectors.Subject    `json:"subject"`
	Params         map[string]any        `json:"params,omitempty"`
	// Callback is where to answer later (after a 202); absent when the instance has no callback_url.
	Callback *Callback `json:"callback,omitempty"`
}

// Callback is the URL (carrying its signed token) that completes the task later.
type Callback struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// The statuses of an answer.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusAccepted  = "accepted"
)

// Answer is the endpoint's answer: the body of its 200 response, or of its later callback.
type Answer struct {
	Schema  string `json:"schema"`
	Version int    `json:"version"`
	Status  string `json:"status"`
	// Result is the action's result (connectors.EraseResult, RectifyResult, RestrictResult,
	// NotifyResult as JSON).
	Result json.RawMessage `json:"result,omitempty"`
	// Tables are what access found.
	Tables []Table `json:"tables,omitempty"`
	// Blocks are a block check's findings, or why an erasure was refused.
	Blocks []connectors.Block `json:"blocks,omitempty"`
	Error  *AnswerError       `json:"error,omitempty"`
}

// Table is one table of an access answer; each row has a value per column.
type Table struct {
	Name    string              `json:"name"`
	Columns []connectors.Column `json:"columns"`
	Rows    [][]any             `json:"rows"`
}

// AnswerError is why the endpoint failed. Its message reaches Lethe's logs and the request's
// record: it must hold no personal data.
type AnswerError struct {
	Message           string `json:"message"`
	Permanent         bool   `json:"permanent,omitempty"`
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
}

// ParseAnswer checks an answer against its schema and decodes it.
func ParseAnswer(body []byte) (Answer, error) {
	var a Answer
	if err := schemas.ValidateAs(AnswerSchema, body); err != nil {
		return a, fmt.Errorf("the answer is not a %s: %w", AnswerSchema, err)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("decoding the answer: %w", err)
	}
	return a, nil
}
