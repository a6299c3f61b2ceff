package domain_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/domain"
)

// The bridge completes a connector action with the result's output (protocol.Output) and the
// workflow reads it as a domain.Output: the two must carry the same JSON, both ways.
func TestOutputReadsTheResultsOutput(t *testing.T) {
	wire := protocol.Output{
		Blocks:  []connectors.Block{{Code: "open_invoice", Reason: "An invoice is open."}},
		Counts:  map[string]int64{"bookings": 3},
		Exports: []protocol.ExportRef{{URI: "file:///x/r1/db/bookings.jsonl", SHA256: "ab", Bytes: 10, Rows: 3, Table: "bookings"}},
		Result:  json.RawMessage(`{"tables":1,"rows":3}`),
	}
	raw, err := json.Marshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	var got domain.Output
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(raw) {
		t.Fatalf("domain.Output changes the result's output:\nwire   %s\ndomain %s", raw, again)
	}
	// Field by field, so a field added to one side only is noticed.
	fields := func(v any) []string {
		var out []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			out = append(out, typ.Field(i).Name+" "+typ.Field(i).Tag.Get("json"))
		}
		return out
	}
	for _, pair := range [][2]any{{protocol.Output{}, domain.Output{}}, {protocol.ExportRef{}, domain.ExportRef{}}} {
		if w, d := fields(pair[0]), fields(pair[1]); !reflect.DeepEqual(w, d) {
			t.Errorf("%T has %v, %T has %v", pair[0], w, pair[1], d)
		}
	}
}
