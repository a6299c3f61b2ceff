// Package domain is the vocabulary of a data-subject request that the workflow, the
// activities, the API and the read model share: what a connector's action produced, as the
// request records it. It imports neither the bus nor the wire format: the request's state is
// stored in Temporal's history and the read model, and outlives any one version of the
// protocol, so its JSON shape is its own (and, for recorded histories, must never change).
package domain

import (
	"encoding/json"

	"github.com/lethe-privacy/lethe/connectors"
)

// Output is what one connector's action produced: the blocks of a block check, counts per
// table, the exported tables of an access, and the role's own result. The bridge completes an
// action with the connector's result output (connectors/protocol), whose JSON this matches.
type Output struct {
	Blocks  []connectors.Block `json:"blocks,omitempty"`
	Counts  map[string]int64   `json:"counts,omitempty"`
	Exports []ExportRef        `json:"exports,omitempty"`
	Result  json.RawMessage    `json:"result,omitempty"`
}

// ExportRef is one exported table in the export store.
type ExportRef struct {
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	Rows   int64  `json:"rows"`
	Table  string `json:"table,omitempty"`
}
