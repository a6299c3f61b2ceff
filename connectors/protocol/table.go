package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"

	"github.com/lethe-privacy/lethe/connectors"
)

// A table file is how a connector hands over records too many for a message: JSON Lines, the
// first line a TableHeader, each following line one row, a JSON array aligned with the
// header's columns. JSON Lines keeps memory flat however many rows stream, on both sides.

// TableHeader is the first line of every table file.
type TableHeader struct {
	Table   string              `json:"table"`
	Columns []connectors.Column `json:"columns"`
}

// Table names become file names in the export store and in the subject's package, so they are
// held to what is safe in a path on every system.
var safeName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// SafeName reports whether s can name a file or folder in the export store and in the
// subject's package on every system: letters, digits, '_', '.' and '-', not "." or "..".
func SafeName(s string) bool { return safeName.MatchString(s) && s != "." && s != ".." }

// Check reports what makes h unusable: a table name that cannot name a file, no columns, an
// empty or repeated column name, an unknown category. Errors name tables and columns, never
// values.
func (h TableHeader) Check() error {
	if !SafeName(h.Table) {
		return fmt.Errorf("table name %q cannot name a file", h.Table)
	}
	if len(h.Columns) == 0 {
		return fmt.Errorf("table %s has no columns", h.Table)
	}
	seen := map[string]bool{}
	for _, c := range h.Columns {
		if c.Name == "" || seen[c.Name] {
			return fmt.Errorf("table %s has an empty or repeated column name", h.Table)
		}
		seen[c.Name] = true
		if !c.Category.Valid() {
			return fmt.Errorf("table %s: column %q has unknown category %q", h.Table, c.Name, c.Category)
		}
	}
	return nil
}

// TableWriter writes one table file. It does not buffer: give it a buffered writer.
type TableWriter struct {
	enc  *json.Encoder
	cols int
	rows int64
}

// NewTableWriter checks the header and writes it to w.
func NewTableWriter(w io.Writer, t connectors.Table) (*TableWriter, error) {
	h := TableHeader{Table: t.Name, Columns: t.Columns}
	if err := h.Check(); err != nil {
		return nil, err
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(h); err != nil {
		return nil, fmt.Errorf("writing the header of %s: %w", t.Name, err)
	}
	return &TableWriter{enc: enc, cols: len(t.Columns)}, nil
}

// WriteRow writes one row, its values aligned with the columns.
func (w *TableWriter) WriteRow(values []any) error {
	if len(values) != w.cols {
		return fmt.Errorf("row %d has %d values for %d columns", w.rows+1, len(values), w.cols)
	}
	w.rows++
	return w.enc.Encode(values)
}

// Rows is how many rows were written.
func (w *TableWriter) Rows() int64 { return w.rows }

// TableReader reads one table file. Its errors say where the file is malformed without
// quoting it: the text is the subject's data.
type TableReader struct {
	Header TableHeader
	// Label names the file in errors ("connector/table"); NewTableReader sets it to the label
	// it was given, and a caller may change it once the header is known.
	Label string
	dec   *json.Decoder
	row   []json.RawMessage
	rows  int64
}

// NewTableReader reads and checks the header.
func NewTableReader(r io.Reader, label string) (*TableReader, error) {
	t := &TableReader{Label: label, dec: json.NewDecoder(r)}
	if err := t.dec.Decode(&t.Header); err != nil {
		return nil, fmt.Errorf("reading header of %s: %s", label, describe(err))
	}
	if err := t.Header.Check(); err != nil {
		return nil, fmt.Errorf("export of %s: %w", label, err)
	}
	return t, nil
}

// Next reads the next row, valid until the following call. At the end of the file it returns
// io.EOF.
func (t *TableReader) Next() ([]json.RawMessage, error) {
	t.row = t.row[:0]
	err := t.dec.Decode(&t.row)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("reading row %d of %s: %s", t.rows+1, t.Label, describe(err))
	}
	t.rows++
	if len(t.row) != len(t.Header.Columns) {
		return nil, fmt.Errorf("row %d of %s has %d values for %d columns", t.rows, t.Label, len(t.row), len(t.Header.Columns))
	}
	return t.row, nil
}

// Rows is how many rows were read.
func (t *TableReader) Rows() int64 { return t.rows }

// Values decodes a row as a database driver gives it: whole numbers become int64, others
// float64, strings, booleans, nil, and nested values maps and slices.
func Values(row []json.RawMessage) ([]any, error) {
	values := make([]any, len(row))
	for i, raw := range row {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("value %d: %s", i+1, describe(err))
		}
		if f, ok := v.(float64); ok {
			var n int64
			if json.Unmarshal(raw, &n) == nil {
				v = n
			} else if math.IsInf(f, 0) {
				return nil, fmt.Errorf("value %d is out of range", i+1)
			}
		}
		values[i] = v
	}
	return values, nil
}

// describe says what is wrong with malformed JSON without quoting it.
func describe(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("expected %s, found a JSON %s", typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "object ends mid-value"
	}
	return "unreadable JSON"
}
