package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/exports"
)

// TableFile is the first line of every exported table file; each following line is one row,
// a JSON array aligned with Columns. JSON Lines keeps memory flat however many rows stream.
type TableFile struct {
	Table   string              `json:"table"`
	Columns []connectors.Column `json:"columns"`
}

var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// exportSink writes each table a connector streams to its own object in the export store.
type exportSink struct {
	store  exports.Store
	prefix string

	w      exports.Writer
	buf    *bufio.Writer
	enc    *json.Encoder
	table  string
	rows   int64
	refs   []bus.ExportRef
	counts map[string]int64
}

func (s *exportSink) BeginTable(ctx context.Context, t connectors.Table) error {
	if s.w != nil {
		return errors.New("BeginTable before the previous table ended")
	}
	if !tableName.MatchString(t.Name) {
		return connectors.Permanent(fmt.Errorf("table name %q cannot name an export file", t.Name))
	}
	w, err := s.store.Create(ctx, s.prefix+t.Name+".jsonl")
	if err != nil {
		return err
	}
	s.w, s.buf, s.table, s.rows = w, bufio.NewWriterSize(w, 64<<10), t.Name, 0
	s.enc = json.NewEncoder(s.buf)
	return s.enc.Encode(TableFile{Table: t.Name, Columns: t.Columns})
}

func (s *exportSink) WriteRow(_ context.Context, values []any) error {
	if s.w == nil {
		return errors.New("WriteRow outside a table")
	}
	s.rows++
	return s.enc.Encode(values)
}

func (s *exportSink) EndTable(context.Context) error {
	if s.w == nil {
		return errors.New("EndTable without BeginTable")
	}
	if err := s.buf.Flush(); err != nil {
		s.abort()
		return fmt.Errorf("writing export of %s: %w", s.table, err)
	}
	obj, err := s.w.Commit()
	s.w = nil
	if err != nil {
		return err
	}
	s.refs = append(s.refs, bus.ExportRef{URI: obj.URI, SHA256: obj.SHA256, Bytes: obj.Bytes, Rows: s.rows, Table: s.table})
	if s.counts == nil {
		s.counts = map[string]int64{}
	}
	s.counts[s.table] = s.rows
	return nil
}

// abort discards a table left open by a failed access.
func (s *exportSink) abort() {
	if s.w != nil {
		s.w.Abort()
		s.w = nil
	}
}

// SubjectsTable is the export table a find writes its subjects to, one row per subject.
var SubjectsTable = connectors.Table{Name: "subjects", Columns: []connectors.Column{
	{Name: "email", Category: connectors.CategoryContact},
	{Name: "phone", Category: connectors.CategoryContact},
	{Name: "customer_id", Category: connectors.CategoryIdentity},
}}

// subjectSink writes the subjects a find streams as the SubjectsTable of an export.
type subjectSink struct {
	export *exportSink
	open   bool
}

func (s *subjectSink) WriteSubject(ctx context.Context, sub connectors.Subject) error {
	if !s.open {
		if err := s.export.BeginTable(ctx, SubjectsTable); err != nil {
			return err
		}
		s.open = true
	}
	return s.export.WriteRow(ctx, []any{sub.Email, sub.Phone, sub.CustomerID})
}

// close ends the table; a find that found no one still writes an empty one.
func (s *subjectSink) close(ctx context.Context) error {
	if !s.open {
		if err := s.export.BeginTable(ctx, SubjectsTable); err != nil {
			return err
		}
	}
	s.open = false
	return s.export.EndTable(ctx)
}
