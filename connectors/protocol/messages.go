package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/schemas"
)

// Command is a lethe.connector.command: work for one connector (schemas/connector-command).
// Who it is about and the action's parameters travel only in Sealed (see Seal and Open).
type Command struct {
	Schema         string           `json:"schema"`
	Version        int              `json:"version"`
	ID             string           `json:"id"`
	IdempotencyKey string           `json:"idempotency_key"`
	RequestID      string           `json:"request_id"`
	TenantID       string           `json:"tenant_id"`
	Connector      string           `json:"connector"`
	Action         string           `json:"action"`
	Sealed         *envelope.Sealed `json:"sealed"`
	TaskToken      string           `json:"task_token"`
	Export         *ExportLocation  `json:"export,omitempty"`
	IssuedAt       time.Time        `json:"issued_at"`
}

// Private is the part of a command that is sealed: personal data (schemas/connector-sealed).
type Private struct {
	Schema  string              `json:"schema"`
	Version int                 `json:"version"`
	Action  string              `json:"action"`
	Subject *connectors.Subject `json:"subject,omitempty"`
	Params  json.RawMessage     `json:"params,omitempty"`
}

// Seal encrypts the subject and params into the command under the connector's current key.
// The identity fields (connector, request, key, action) must be set first: the ciphertext is
// bound to them. The plaintext is checked against its schema first, as Publish checks the rest.
func (c *Command) Seal(keys *envelope.Ring, subject *connectors.Subject, params json.RawMessage) error {
	plain, err := json.Marshal(Private{
		Schema: schemas.ConnectorSealed, Version: 1, Action: c.Action, Subject: subject, Params: params,
	})
	if err != nil {
		return fmt.Errorf("encoding the sealed part of a command: %w", err)
	}
	if err := schemas.ValidateAs(schemas.ConnectorSealed, plain); err != nil {
		return fmt.Errorf("sealed part of a command for %s: %w", c.Connector, err)
	}
	c.Sealed, err = keys.Seal(plain, c.aad())
	if err != nil {
		return fmt.Errorf("sealing a command for %s: %w", c.Connector, err)
	}
	return nil
}

// Open decrypts and checks the command's sealed part. Errors never quote its contents.
func (c Command) Open(keys *envelope.Ring) (Private, error) {
	var p Private
	plain, err := keys.Open(c.Sealed, c.aad())
	if err != nil {
		return p, fmt.Errorf("opening a command for %s: %w", c.Connector, err)
	}
	if err := schemas.ValidateAs(schemas.ConnectorSealed, plain); err != nil {
		return p, fmt.Errorf("sealed part of a command for %s: %w", c.Connector, err)
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return p, fmt.Errorf("decoding the sealed part of a command for %s: %w", c.Connector, err)
	}
	if p.Action != c.Action {
		return p, fmt.Errorf("sealed part of a command for %s names action %s, the command %s", c.Connector, p.Action, c.Action)
	}
	return p, nil
}

func (c Command) aad() []byte {
	return envelope.CommandAAD(c.Connector, c.RequestID, c.IdempotencyKey, c.Action)
}

// ExportLocation is the URI prefix under which a connector writes large results.
type ExportLocation struct {
	Location string `json:"location"`
}

// Prefix is where the named connector writes its files: its own directory below the location
// (schemas/README.md), so connectors of one request never share files.
func (l ExportLocation) Prefix(connector string) string {
	return strings.TrimSuffix(l.Location, "/") + "/" + connector + "/"
}

// Result statuses.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusProgress  = "progress"
)

// Result is a lethe.connector.result: a connector's answer (schemas/connector-result).
type Result struct {
	Schema         string       `json:"schema"`
	Version        int          `json:"version"`
	IdempotencyKey string       `json:"idempotency_key"`
	RequestID      string       `json:"request_id"`
	TenantID       string       `json:"tenant_id"`
	Connector      string       `json:"connector"`
	Action         string       `json:"action"`
	TaskToken      string       `json:"task_token"`
	Status         string       `json:"status"`
	Error          *ResultError `json:"error,omitempty"`
	Output         *Output      `json:"output,omitempty"`
	CompletedAt    time.Time    `json:"completed_at"`
}

// ResultError says why a command failed and whether a retry can help.
type ResultError struct {
	Message   string `json:"message"`
	Permanent bool   `json:"permanent"`
	Code      string `json:"code,omitempty"`
	// RetryAfterSeconds, on a transient failure, is the soonest the next attempt may run.
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// MaxRetryAfter is the longest retry hint a result carries (schemas/connector-result).
const MaxRetryAfter = 24 * time.Hour

// RetryAfterSeconds is d as the result's retry_after_seconds: whole seconds, rounded up so
// the next attempt is never sooner than asked, at most MaxRetryAfter.
func RetryAfterSeconds(d time.Duration) int {
	d = min(max(d, time.Second), MaxRetryAfter)
	return int((d + time.Second - 1) / time.Second)
}

// RetryAfter is the retry hint as a duration; zero when there is none.
func (e ResultError) RetryAfter() time.Duration {
	return time.Duration(e.RetryAfterSeconds) * time.Second
}

// Output is what a command produced. Result holds the role's own result (e.g. an erasure's
// counts per table); large data is only referenced through Exports.
type Output struct {
	Blocks  []connectors.Block `json:"blocks,omitempty"`
	Counts  map[string]int64   `json:"counts,omitempty"`
	Exports []ExportRef        `json:"exports,omitempty"`
	Result  json.RawMessage    `json:"result,omitempty"`
}

// ExportRef points at one object in the export store.
type ExportRef struct {
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	Rows   int64  `json:"rows"`
	Table  string `json:"table,omitempty"`
}

// NewResult starts the result of cmd, echoing its identity.
func NewResult(cmd Command, status string, now time.Time) Result {
	return Result{
		Schema: schemas.ConnectorResult, Version: schemas.Version,
		IdempotencyKey: cmd.IdempotencyKey, RequestID: cmd.RequestID, TenantID: cmd.TenantID,
		Connector: cmd.Connector, Action: cmd.Action, TaskToken: cmd.TaskToken,
		Status: status, CompletedAt: now.UTC(),
	}
}
