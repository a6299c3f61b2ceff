// Package exportpkg builds the package a data subject downloads after an access or portability
// request: one ZIP holding, for every table a connector exported, a JSON file and a CSV file,
// plus a readable summary of the Art. 15 information (access) or a short README (portability),
// and a manifest with every file's SHA-256 and row count.
//
// Inputs are the JSON Lines objects connectors write to the export store (protocol.TableHeader).
// Build streams them: memory stays flat however many rows a table holds, and the ZIP is written
// straight into the export store, visible only once complete.
package exportpkg

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
)

// Package kinds, matching the request types that produce them.
const (
	KindAccess      = "access"
	KindPortability = "portability"
)

// Names of the files Build adds beside the tables.
const (
	SummaryFile  = "summary.html"
	ReadmeFile   = "README.txt"
	ManifestFile = "manifest.json"
)

// ErrChecksum is returned (wrapped) when an input object's content does not match the SHA-256
// recorded when it was written.
var ErrChecksum = errors.New("export object checksum mismatch")

// Input is everything Build needs for one request's package.
type Input struct {
	RequestID string
	// TenantID is carried for the caller's audit trail; it is not written into the package.
	TenantID    string
	Kind        string // KindAccess or KindPortability
	GeneratedAt time.Time
	Sources     []Source
	// Notice is required for access packages; portability packages do not use it.
	Notice Art15Notice
}

// Source is one connector's exported tables.
type Source struct {
	Connector string
	Tables    []protocol.ExportRef
}

// Package describes the stored ZIP.
type Package struct {
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	Files  []File `json:"files"`
}

// File is one file inside the ZIP. SHA256 and Bytes are of its uncompressed content; Rows is
// the number of records in a table file and zero for the others.
type File struct {
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// tableInfo is what the summary and manifest say about one exported table.
type tableInfo struct {
	Connector  string                `json:"connector"`
	Table      string                `json:"table"`
	Rows       int64                 `json:"rows"`
	Categories []connectors.Category `json:"categories"`
	Files      []string              `json:"files"`
}

func (in Input) validate() error {
	var errs []error
	if in.RequestID == "" {
		errs = append(errs, errors.New("request id is required"))
	}
	if in.Kind != KindAccess && in.Kind != KindPortability {
		errs = append(errs, fmt.Errorf("kind %q is neither %q nor %q", in.Kind, KindAccess, KindPortability))
	}
	if in.GeneratedAt.IsZero() {
		errs = append(errs, errors.New("generated-at time is required"))
	}
	for _, s := range in.Sources {
		if !protocol.SafeName(s.Connector) {
			errs = append(errs, fmt.Errorf("connector name %q cannot name a folder in the package", s.Connector))
		}
		for _, t := range s.Tables {
			if t.SHA256 == "" {
				errs = append(errs, fmt.Errorf("export of %s/%s has no recorded checksum", s.Connector, t.Table))
			}
		}
	}
	if in.Kind == KindAccess {
		if err := in.Notice.validate(); err != nil {
			errs = append(errs, fmt.Errorf("art. 15 notice: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Build writes the package for in to target in store and returns its description. Every input
// object is verified against its recorded SHA-256 as it is read; on any error nothing is stored
// at target. Building the same input twice yields byte-identical packages, so a retried build
// records the same checksum.
func Build(ctx context.Context, store exportstore.Store, target string, in Input) (Package, error) {
	if err := in.validate(); err != nil {
		return Package{}, fmt.Errorf("building export package: %w", err)
	}
	w, err := store.Create(ctx, target)
	if err != nil {
		return Package{}, fmt.Errorf("building export package: %w", err)
	}
	b := &builder{ctx: ctx, store: store, in: in, zw: zip.NewWriter(w), names: map[string]bool{}}
	if err := b.build(); err != nil {
		w.Abort()
		return Package{}, fmt.Errorf("building export package: %w", err)
	}
	obj, err := w.Commit()
	if err != nil {
		return Package{}, fmt.Errorf("storing export package: %w", err)
	}
	return Package{URI: obj.URI, SHA256: obj.SHA256, Bytes: obj.Bytes, Files: b.files}, nil
}

type builder struct {
	ctx    context.Context
	store  exportstore.Store
	in     Input
	zw     *zip.Writer
	names  map[string]bool // lower-cased, so no two entries collide on a case-insensitive disk
	files  []File
	tables []tableInfo
}

func (b *builder) build() error {
	for _, s := range b.in.Sources {
		for _, ref := range s.Tables {
			if err := b.table(s.Connector, ref); err != nil {
				return err
			}
		}
	}
	var err error
	if b.in.Kind == KindAccess {
		err = b.entry(SummaryFile, func(w io.Writer) (int64, error) { return 0, writeSummary(w, b.in, b.tables) })
	} else {
		err = b.entry(ReadmeFile, func(w io.Writer) (int64, error) { return 0, writeReadme(w, b.in, b.tables) })
	}
	if err != nil {
		return err
	}
	// The manifest lists every other file; it cannot hold its own checksum.
	if err := b.entry(ManifestFile, b.writeManifest); err != nil {
		return err
	}
	return b.zw.Close()
}

// entry adds one file to the ZIP, recording its checksum, size and the rows write reports.
func (b *builder) entry(name string, write func(io.Writer) (int64, error)) error {
	key := strings.ToLower(name)
	if b.names[key] {
		return fmt.Errorf("two files named %s in the package", name)
	}
	b.names[key] = true
	zf, err := b.zw.CreateHeader(&zip.FileHeader{
		Name:     name,
		Method:   zip.Deflate,
		Modified: b.in.GeneratedAt.UTC(),
	})
	if err != nil {
		return fmt.Errorf("adding %s: %w", name, err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(zf, h)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	rows, err := write(bw)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	b.files = append(b.files, File{Name: name, Rows: rows, Bytes: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// table writes one exported table as JSON and as CSV. A ZIP has one entry open at a time, so the
// input is read twice, once per format, rather than holding either copy in memory; both reads
// are verified against the recorded checksum.
func (b *builder) table(connector string, ref protocol.ExportRef) error {
	if err := b.ctx.Err(); err != nil {
		return err
	}
	t, err := openTable(b.ctx, b.store, connector, ref)
	if err != nil {
		return err
	}
	defer t.Close()
	// The file names come from the table's own header, checked against the reference.
	base := connector + "/" + t.name
	cols := t.columns
	err = b.entry(base+".json", func(w io.Writer) (int64, error) {
		return b.copyRows(t, newJSONRows(w, cols))
	})
	if err != nil {
		return err
	}
	_ = t.Close()

	t, err = openTable(b.ctx, b.store, connector, ref)
	if err != nil {
		return err
	}
	defer t.Close()
	err = b.entry(base+".csv", func(w io.Writer) (int64, error) {
		return b.copyRows(t, newCSVRows(w, cols))
	})
	if err != nil {
		return err
	}
	info := tableInfo{Connector: connector, Table: t.name, Rows: t.rows, Files: []string{base + ".json", base + ".csv"},
		Categories: []connectors.Category{}}
	// An empty table shows no data of any category.
	if info.Rows > 0 {
		info.Categories = categories(cols)
	}
	b.tables = append(b.tables, info)
	return nil
}

// rowWriter is one output format of a table.
type rowWriter interface {
	begin() error
	row([]json.RawMessage) error
	end() error
}

func (b *builder) copyRows(t *tableReader, out rowWriter) (int64, error) {
	if err := out.begin(); err != nil {
		return 0, err
	}
	for {
		ok, err := t.next()
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		if t.rows%1024 == 0 {
			if err := b.ctx.Err(); err != nil {
				return 0, err
			}
		}
		if err := out.row(t.row); err != nil {
			return 0, err
		}
	}
	return t.rows, out.end()
}

// categories lists the personal-data categories among cols, each once, in column order.
func categories(cols []connectors.Column) []connectors.Category {
	out := []connectors.Category{}
	seen := map[connectors.Category]bool{}
	for _, c := range cols {
		if c.Category != connectors.CategoryNone && !seen[c.Category] {
			seen[c.Category] = true
			out = append(out, c.Category)
		}
	}
	return out
}

func (b *builder) writeManifest(w io.Writer) (int64, error) {
	var total int64
	for _, t := range b.tables {
		total += t.Rows
	}
	tables := b.tables
	if tables == nil {
		tables = []tableInfo{}
	}
	m := manifest{
		RequestID:   b.in.RequestID,
		Kind:        b.in.Kind,
		GeneratedAt: b.in.GeneratedAt.UTC().Format(time.RFC3339),
		Rows:        total,
		Tables:      tables,
		Files:       b.files,
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return 0, enc.Encode(m)
}

// manifest is manifest.json: what the package holds, so the subject (or the organisation the
// subject hands it to) can check it is complete and unaltered.
type manifest struct {
	RequestID   string      `json:"request_id"`
	Kind        string      `json:"kind"`
	GeneratedAt string      `json:"generated_at"`
	Rows        int64       `json:"rows"`
	Tables      []tableInfo `json:"tables"`
	Files       []File      `json:"files"`
}

// tableReader reads one table file (connectors/protocol), hashing every byte so that reaching
// the end proves (or disproves) the content is what was recorded.
type tableReader struct {
	rc      io.ReadCloser
	h       hash.Hash
	src     *countReader
	tr      *protocol.TableReader
	ref     protocol.ExportRef
	label   string // connector/table, for errors
	name    string
	columns []connectors.Column
	row     []json.RawMessage
	rows    int64
	closed  bool
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func openTable(ctx context.Context, store exportstore.Store, connector string, ref protocol.ExportRef) (*tableReader, error) {
	label := connector + "/" + ref.Table
	rc, err := store.Open(ctx, ref.URI)
	if err != nil {
		return nil, fmt.Errorf("opening export of %s: %w", label, err)
	}
	h := sha256.New()
	src := &countReader{r: io.TeeReader(rc, h)}
	t := &tableReader{rc: rc, h: h, src: src, ref: ref, label: label}
	t.tr, err = protocol.NewTableReader(src, label)
	if err != nil {
		return nil, t.fail(err)
	}
	if table := t.tr.Header.Table; ref.Table != "" && table != ref.Table {
		return nil, t.fail(fmt.Errorf("export of %s holds table %q", label, table))
	}
	t.name, t.columns = t.tr.Header.Table, t.tr.Header.Columns
	t.label = connector + "/" + t.name
	t.tr.Label = t.label
	return t, nil
}

// next reads the next row into t.row. At the end of the object it verifies the checksum, size
// and row count and returns false.
func (t *tableReader) next() (bool, error) {
	row, err := t.tr.Next()
	if err == io.EOF {
		return false, t.verify()
	}
	if err != nil {
		return false, t.fail(err)
	}
	t.row, t.rows = row, t.tr.Rows()
	return true, nil
}

func (t *tableReader) verify() error {
	if _, err := io.Copy(io.Discard, t.src); err != nil {
		return fmt.Errorf("reading export of %s: %w", t.label, err)
	}
	if got := hex.EncodeToString(t.h.Sum(nil)); got != t.ref.SHA256 {
		return fmt.Errorf("export of %s: %w (have %s, recorded %s)", t.label, ErrChecksum, got, t.ref.SHA256)
	}
	if t.src.n != t.ref.Bytes {
		return fmt.Errorf("export of %s is %d bytes, recorded %d", t.label, t.src.n, t.ref.Bytes)
	}
	if t.rows != t.ref.Rows {
		return fmt.Errorf("export of %s has %d rows, recorded %d", t.label, t.rows, t.ref.Rows)
	}
	return nil
}

// fail reports a malformed object as a checksum mismatch when it is one: an altered object
// usually breaks the JSON before its end is reached, and the mismatch is the real cause.
func (t *tableReader) fail(err error) error {
	if _, cerr := io.Copy(io.Discard, t.src); cerr == nil {
		if got := hex.EncodeToString(t.h.Sum(nil)); got != t.ref.SHA256 {
			err = fmt.Errorf("export of %s: %w (have %s, recorded %s)", t.label, ErrChecksum, got, t.ref.SHA256)
		}
	}
	_ = t.Close()
	return err
}

// Close may be called more than once.
func (t *tableReader) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	return t.rc.Close()
}
