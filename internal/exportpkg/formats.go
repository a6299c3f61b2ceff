package exportpkg

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/lethe-privacy/lethe/connectors"
)

// jsonRows writes a table as a JSON array of objects keyed by column name, one object per line,
// as rows arrive. Values are copied as the connector encoded them, so numbers keep their exact
// text.
type jsonRows struct {
	w    io.Writer
	keys [][]byte // `{"name":` and `,"name":` per column, encoded once
	n    int64
}

func newJSONRows(w io.Writer, cols []connectors.Column) *jsonRows {
	keys := make([][]byte, len(cols))
	for i, c := range cols {
		name, _ := json.Marshal(c.Name) // a string always marshals
		sep := ","
		if i == 0 {
			sep = "{"
		}
		keys[i] = append(append([]byte(sep), name...), ':')
	}
	return &jsonRows{w: w, keys: keys}
}

func (j *jsonRows) begin() error {
	_, err := io.WriteString(j.w, "[")
	return err
}

func (j *jsonRows) row(vals []json.RawMessage) error {
	sep := ",\n"
	if j.n == 0 {
		sep = "\n"
	}
	j.n++
	if _, err := io.WriteString(j.w, sep); err != nil {
		return err
	}
	for i, v := range vals {
		if _, err := j.w.Write(j.keys[i]); err != nil {
			return err
		}
		if _, err := j.w.Write(v); err != nil {
			return err
		}
	}
	_, err := io.WriteString(j.w, "}")
	return err
}

func (j *jsonRows) end() error {
	end := "\n]\n"
	if j.n == 0 {
		end = "]\n"
	}
	_, err := io.WriteString(j.w, end)
	return err
}

// csvRows writes a table as RFC 4180 CSV: a header row of column names, then one record per row.
type csvRows struct {
	w    *csv.Writer
	cols []connectors.Column
	rec  []string
}

func newCSVRows(w io.Writer, cols []connectors.Column) *csvRows {
	cw := csv.NewWriter(w)
	// RFC 4180 ends records with CRLF. encoding/csv then also writes line breaks inside a value
	// as CRLF; the JSON file keeps values byte for byte.
	cw.UseCRLF = true
	return &csvRows{w: cw, cols: cols, rec: make([]string, len(cols))}
}

func (c *csvRows) begin() error {
	for i, col := range c.cols {
		c.rec[i] = defuse(col.Name)
	}
	return c.w.Write(c.rec)
}

func (c *csvRows) row(vals []json.RawMessage) error {
	for i, v := range vals {
		s, err := csvCell(v)
		if err != nil {
			return err
		}
		c.rec[i] = s
	}
	return c.w.Write(c.rec)
}

func (c *csvRows) end() error {
	c.w.Flush()
	return c.w.Error()
}

// csvCell renders one JSON value as CSV text: strings as themselves, null as an empty cell,
// numbers and booleans as their JSON text, objects and arrays as compact JSON.
func csvCell(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", errors.New("empty value")
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", errors.New("unreadable string value")
		}
		return defuse(s), nil
	case 'n':
		return "", nil
	case '{', '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return "", errors.New("unreadable nested value")
		}
		return buf.String(), nil
	}
	// A number or a boolean: it cannot carry a formula, and a negative number keeps its sign
	// unprefixed so it stays a number in a spreadsheet.
	return string(v), nil
}

// defuse guards against CSV formula injection. Subjects open their export in a spreadsheet, and
// a spreadsheet runs a cell that starts with = + - or @ (or a tab or carriage return, which
// some strip first) as a formula; the values come from forms anyone can fill in. Such a text
// cell gets a leading single quote, which spreadsheets read as "this is text" (OWASP's advice).
// The JSON file beside it keeps the value unaltered.
func defuse(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}
