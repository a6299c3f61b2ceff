package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/schemas"
)

// Every valid example of schemas/testdata decodes into its Go type and encodes back to the same
// JSON: the Go types neither drop nor invent a field the schema defines.
func TestTypesRoundTripTheSchemaExamples(t *testing.T) {
	types := map[string]func() any{
		"connector-command": func() any { return &protocol.Command{} },
		"connector-sealed":  func() any { return &protocol.Private{} },
		"connector-result":  func() any { return &protocol.Result{} },
		"dlq":               func() any { return &protocol.DeadLetter{} },
	}
	for dir, newValue := range types {
		files, err := filepath.Glob(filepath.Join("..", "..", "schemas", "testdata", dir, "valid-*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no examples for %s: %v", dir, err)
		}
		for _, f := range files {
			t.Run(dir+"/"+filepath.Base(f), func(t *testing.T) {
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				v := newValue()
				if err := json.Unmarshal(raw, v); err != nil {
					t.Fatalf("decoding: %v", err)
				}
				again, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if want, got := canonical(t, raw), canonical(t, again); want != got {
					t.Fatalf("the Go type changes the example:\nwant %s\ngot  %s", want, got)
				}
			})
		}
	}
}

// Every JSON name of the Go types is a property of the schema it is written as.
func TestFieldNamesAreSchemaProperties(t *testing.T) {
	cases := []struct {
		file string
		path []string // properties to descend into
		v    any
	}{
		{"connector-command", nil, protocol.Command{}},
		{"connector-command", []string{"export"}, protocol.ExportLocation{}},
		{"connector-sealed", nil, protocol.Private{}},
		{"connector-result", nil, protocol.Result{}},
		{"connector-result", []string{"error"}, protocol.ResultError{}},
		{"connector-result", []string{"output"}, protocol.Output{}},
		{"connector-result", []string{"output", "blocks", "items"}, connectors.Block{}},
		{"connector-result", []string{"output", "exports", "items"}, protocol.ExportRef{}},
		{"dlq", nil, protocol.DeadLetter{}},
		{"dlq", []string{"value_ref"}, protocol.ValueRef{}},
		{"common", []string{"$defs", "subject"}, connectors.Subject{}},
	}
	for _, c := range cases {
		schema := load(t, c.file)
		for _, p := range c.path {
			if p == "items" || p == "$defs" {
				schema = schema[p].(map[string]any)
				continue
			}
			if props, ok := schema["properties"].(map[string]any); ok && props[p] != nil {
				schema = props[p].(map[string]any)
			} else {
				schema = schema[p].(map[string]any)
			}
		}
		props, _ := schema["properties"].(map[string]any)
		typ := reflect.TypeOf(c.v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if _, ok := props[name]; !ok {
				t.Errorf("%s.%s is written as %q, which %s.schema.json %v does not define", typ, typ.Field(i).Name, name, c.file, c.path)
			}
		}
	}
}

func TestSealedCommandAndResultMatchTheirSchemas(t *testing.T) {
	key, err := envelope.NewKey("k1", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := envelope.NewRing(key)
	if err != nil {
		t.Fatal(err)
	}
	cmd := protocol.Command{
		Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion, ID: "c1", IdempotencyKey: "r1:shop:erase",
		RequestID: "r1", TenantID: "t1", Connector: "shop", Action: "erase", TaskToken: "dG9rZW4=",
		IssuedAt: time.Now().UTC(),
	}
	if err := cmd.Seal(keys, &connectors.Subject{Email: "ada@example.com"}, nil); err != nil {
		t.Fatal(err)
	}
	data, err := protocol.Encode(cmd)
	if err != nil {
		t.Fatalf("a sealed command does not match its schema: %v", err)
	}
	if bytes.Contains(data, []byte("ada@example.com")) {
		t.Fatal("the command carries the subject in clear")
	}
	private, err := cmd.Open(keys)
	if err != nil || private.Subject.Email != "ada@example.com" {
		t.Fatalf("open = %+v, %v", private, err)
	}

	res := protocol.NewResult(cmd, protocol.StatusFailed, time.Now())
	res.Error = &protocol.ResultError{Message: "rate limited", Code: "transient",
		RetryAfterSeconds: protocol.RetryAfterSeconds(90 * time.Second)}
	res.Output = &protocol.Output{Blocks: []connectors.Block{{Code: "open_invoice", Reason: "An invoice is open."}}}
	if _, err := protocol.Encode(res); err != nil {
		t.Fatalf("a result does not match its schema: %v", err)
	}
	res.Error.RetryAfterSeconds = 0 // the schema's minimum is 1: "none" is leaving it out
	res.Status = "done"
	var invalid *protocol.EncodeError
	if _, err := protocol.Encode(res); !errors.As(err, &invalid) {
		t.Fatalf("a result with an unknown status was encoded: %v", err)
	}
}

// What TableWriter writes, TableReader reads back, numbers as a database driver gives them.
func TestTableFileRoundTrip(t *testing.T) {
	table := connectors.Table{Name: "bookings", Columns: []connectors.Column{
		{Name: "email", Category: connectors.CategoryContact}, {Name: "visits"}, {Name: "spent"},
	}}
	var buf bytes.Buffer
	w, err := protocol.NewTableWriter(&buf, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]any{{"ada@example.com", 3, 12.5}, {nil, int64(1) << 53, 0}} {
		if err := w.WriteRow(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRow([]any{"short"}); err == nil {
		t.Fatal("a row shorter than the columns was written")
	}
	first, _, _ := strings.Cut(buf.String(), "\n")
	if first != `{"table":"bookings","columns":[{"name":"email","category":"contact"},{"name":"visits"},{"name":"spent"}]}` {
		t.Fatalf("header line %s", first)
	}

	r, err := protocol.NewTableReader(&buf, "shop/bookings")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Header.Columns, table.Columns) {
		t.Fatalf("columns %+v", r.Header.Columns)
	}
	var got [][]any
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		values, err := protocol.Values(row)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, values)
	}
	want := [][]any{{"ada@example.com", int64(3), 12.5}, {nil, int64(1) << 53, int64(0)}}
	if !reflect.DeepEqual(got, want) || r.Rows() != 2 {
		t.Fatalf("rows %#v, want %#v", got, want)
	}
}

// A malformed file is refused with an error that names the file and never quotes its content.
func TestTableFileErrorsNameTheFileNotTheData(t *testing.T) {
	header := `{"table":"members","columns":[{"name":"email","category":"contact"},{"name":"x"}]}` + "\n"
	for name, c := range map[string]struct{ body, want string }{
		"header not JSON":    {`secret@example.com` + "\n", "reading header of shop/members: malformed JSON"},
		"unsafe table name":  {`{"table":"..","columns":[{"name":"a"}]}`, `table name ".." cannot name a file`},
		"no columns":         {`{"table":"members","columns":[]}`, "table members has no columns"},
		"repeated column":    {`{"table":"members","columns":[{"name":"a"},{"name":"a"}]}`, "repeated column name"},
		"unknown category":   {`{"table":"members","columns":[{"name":"a","category":"secret@example.com"}]}`, "unknown category"},
		"row too short":      {header + `["secret@example.com"]`, "row 1 of shop/members has 1 values for 2 columns"},
		"row not an array":   {header + `{"secret@example.com":1}`, "reading row 1 of shop/members: expected"},
		"row cut off midway": {header + `["secret@example.com",`, "reading row 1 of shop/members"},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := protocol.NewTableReader(strings.NewReader(c.body), "shop/members")
			for err == nil {
				_, err = r.Next()
			}
			if err == io.EOF || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if name != "unknown category" && strings.Contains(err.Error(), "secret@example.com") {
				t.Fatalf("the error quotes the file: %v", err)
			}
		})
	}
}

func load(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "schemas", name+".schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func canonical(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
