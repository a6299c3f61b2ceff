package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzValidate: every Kafka message Lethe consumes is validated first, and the reason of a
// refusal goes to the DLQ and the log. Any bytes give a *Error of one bounded, stable line, or
// a message of a known schema that validates the same way as that schema and again after a
// trip through a JSON decoder and encoder.
func FuzzValidate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"schema":"lethe.event","version":1e400}`))
	f.Add([]byte(`{"schema":"lethe.connector.result","version":-0}`))
	f.Add([]byte(`[{"schema":"lethe.event"}]`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		name, err := Validate(data)
		if err != nil {
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("not a *schemas.Error: %T %v", err, err)
			}
			line := err.Error()
			if strings.Contains(line, "\n") || len(line) > 600 {
				t.Fatalf("a DLQ reason must be one short line: %q", line)
			}
			if _, again := Validate(data); again == nil || again.Error() != line {
				t.Fatalf("the reason changed between two runs: %q, then %v", line, again)
			}
			return
		}
		if !slices.Contains(Names(), name) {
			t.Fatalf("valid under unknown schema %q", name)
		}
		if err := ValidateAs(name, data); err != nil {
			t.Fatalf("Validate accepts as %s, ValidateAs refuses: %v", name, err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("a valid message is not JSON to encoding/json: %v", err)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateAs(name, out); err != nil {
			t.Fatalf("re-encoded message no longer valid: %v\n%s", err, out)
		}
	})
}
