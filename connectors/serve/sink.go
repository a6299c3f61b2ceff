package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
)

// exportSink writes each table a connector streams to its own object in the export store.
type exportSink struct {
	store  exportstore.Store
	prefix string

	w      exportstore.Writer
	buf    *bufio.Writer
	tw     *protocol.TableWriter
	table  string
	refs   []protocol.ExportRef
	counts map[string]int64
}

func (s *exportSink) BeginTable(ctx context.Context, t connectors.Table) error {
	if s.w != nil {
		return errors.New("BeginTable before the previous table ended")
	}
	if err := (protocol.TableHeader{Table: t.Name, Columns: t.Columns}).Check(); err != nil {
		return connectors.Permanent(fmt.Errorf("exporting a table: %w", err))
	}
	w, err := s.store.Create(ctx, s.prefix+t.Name+".jsonl")
	if err != nil {
		return err
	}
	s.w, s.buf, s.table = w, bufio.NewWriterSize(w, 64<<10), t.Name
	s.tw, err = protocol.NewTableWriter(s.buf, t)
	return err
}

func (s *exportSink) WriteRow(_ context.Context, values []any) error {
	if s.w == nil {
		return errors.New("WriteRow outside a table")
	}
	return s.tw.WriteRow(values)
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
	s.refs = append(s.refs, protocol.ExportRef{URI: obj.URI, SHA256: obj.SHA256, Bytes: obj.Bytes, Rows: s.tw.Rows(), Table: s.table})
	if s.counts == nil {
		s.counts = map[string]int64{}
	}
	s.counts[s.table] = s.tw.Rows()
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
