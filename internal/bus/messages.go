package bus

import "time"

// Event is a lethe.event: something happened to a request or a breach (schemas/event). It
// stays here, not in connectors/protocol: only Lethe writes it and no connector reads it.
type Event struct {
	Schema     string         `json:"schema"`
	Version    int            `json:"version"`
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	TenantID   string         `json:"tenant_id"`
	RequestID  string         `json:"request_id,omitempty"`
	BreachID   string         `json:"breach_id,omitempty"`
	Status     string         `json:"status,omitempty"`
	OccurredAt time.Time      `json:"occurred_at"`
	Data       map[string]any `json:"data,omitempty"`
}
