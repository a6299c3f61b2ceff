package protocol

import "time"

// DeadLetter is the body of a message on lethe.dlq (schemas/dlq). It holds the original value
// whole (Value or ValueBase64) or, when that would be too large or might hold personal data in
// clear, a reference to it (ValueRef).
type DeadLetter struct {
	Schema      string    `json:"schema"`
	Version     int       `json:"version"`
	Reason      string    `json:"reason"`
	SourceTopic string    `json:"source_topic"`
	Partition   int       `json:"partition"`
	Offset      int64     `json:"offset"`
	Key         string    `json:"key,omitempty"`
	Value       *string   `json:"value,omitempty"`
	ValueBase64 *string   `json:"value_base64,omitempty"`
	ValueRef    *ValueRef `json:"value_ref,omitempty"`
	FailedAt    time.Time `json:"failed_at"`
}

// ValueRef stands for a message not copied into lethe.dlq: it stays at the dead letter's
// source_topic, partition and offset (until the topic's retention removes it); the reference
// says how large it was, its SHA-256 and its first bytes.
type ValueRef struct {
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
	Head   []byte `json:"head_base64"` // encoding/json writes []byte as base64
}
