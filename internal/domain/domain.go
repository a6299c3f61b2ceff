// Package domain is the vocabulary of a data-subject request that the workflow, the
// activities, the API, MyAccount and the read model share: request types and statuses, the
// tenant's policy as a request keeps it, the request's state and timeline, and what each
// connector did (its outcome and output; blocks are connectors.Block). It imports neither the
// bus nor the wire format nor the workflow: the state is stored in Temporal's history and the
// read model and outlives any one version of the protocol, so its JSON shape is its own (and,
// for recorded histories, must never change).
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
