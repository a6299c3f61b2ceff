package exportpkg_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/exportpkg"
)

var generatedAt = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

// writeTable stores a table the way the connector runner does: a header line, then one JSON
// array per row.
func writeTable(t testing.TB, dir *exportstore.Dir, rel, table string, cols []connectors.Column, rows [][]any) protocol.ExportRef {
	t.Helper()
	w, err := dir.Create(context.Background(), dir.URI(rel))
	require.NoError(t, err)
	enc := json.NewEncoder(w)
	require.NoError(t, enc.Encode(map[string]any{"table": table, "columns": cols}))
	for _, r := range rows {
		require.NoError(t, enc.Encode(r))
	}
	obj, err := w.Commit()
	require.NoError(t, err)
	return protocol.ExportRef{URI: obj.URI, SHA256: obj.SHA256, Bytes: obj.Bytes, Rows: int64(len(rows)), Table: table}
}

var (
	customerCols = []connectors.Column{
		{Name: "id"},
		{Name: "name", Category: connectors.CategoryIdentity},
		{Name: "email", Category: connectors.CategoryContact},
		{Name: "note"},
		{Name: "balance", Category: connectors.CategoryFinancial},
		{Name: "vip"},
		{Name: "address", Category: connectors.CategoryContact},
	}
	customerRows = [][]any{
		{1, "Zoë Ünal-Straße 日本", "zoe@example.com", "likes \"quiet\" rooms, window seat", -12.5, true, map[string]any{"city": "Kraków", "zip": "30-001"}},
		{2, "=HYPERLINK(\"http://evil.example\",\"x\")", "+44 20 7946 0000", "line one\nline two", 0, false, nil},
		{3, "@SUM(A1:A2)", "-1", "", 1e21, nil, []any{"a", 1}},
	}
	treatmentCols = []connectors.Column{
		{Name: "id"},
		{Name: "service"},
		{Name: "allergy", Category: connectors.CategoryHealth},
	}
	treatmentRows = [][]any{
		{10, "Facial", "latex"},
		{11, "Massage", nil},
	}
	memberCols = []connectors.Column{
		{Name: "email", Category: connectors.CategoryContact},
		{Name: "status", Category: connectors.CategoryMarketing},
	}
	memberRows  = [][]any{{"zoe@example.com", "subscribed"}}
	invoiceCols = []connectors.Column{{Name: "number"}, {Name: "total", Category: connectors.CategoryFinancial}}
)

type fixture struct {
	dir *exportstore.Dir
	in  exportpkg.Input
}

func newFixture(t testing.TB, kind string) fixture {
	dir, err := exportstore.NewDir(t.TempDir())
	require.NoError(t, err)
	in := exportpkg.Input{
		RequestID:   "req-0001",
		TenantID:    "salon",
		Kind:        kind,
		GeneratedAt: generatedAt,
		Notice:      exportpkg.DefaultNotice("Salon Aurora", "privacy@aurora.example"),
		Sources: []exportpkg.Source{
			{Connector: "database", Tables: []protocol.ExportRef{
				writeTable(t, dir, "in/database/customers.jsonl", "customers", customerCols, customerRows),
				writeTable(t, dir, "in/database/treatments.jsonl", "treatments", treatmentCols, treatmentRows),
				writeTable(t, dir, "in/database/invoices.jsonl", "invoices", invoiceCols, nil),
			}},
			{Connector: "mailchimp", Tables: []protocol.ExportRef{
				writeTable(t, dir, "in/mailchimp/members.jsonl", "members", memberCols, memberRows),
			}},
		},
	}
	return fixture{dir: dir, in: in}
}

// unzip reads every entry of the stored package, in order.
func unzip(t *testing.T, dir *exportstore.Dir, uri string) ([]string, map[string][]byte) {
	t.Helper()
	r, err := dir.Open(context.Background(), uri)
	require.NoError(t, err)
	raw, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	require.NoError(t, err)
	var names []string
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc) // also checks the entry's CRC-32
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		names = append(names, f.Name)
		files[f.Name] = b
		assert.True(t, f.Modified.Equal(generatedAt), "%s modified time", f.Name)
	}
	return names, files
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// normalise turns rows through JSON the way a reader of the package sees them.
func normalise(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&out))
	return out
}

func asObjects(cols []connectors.Column, rows [][]any) []map[string]any {
	out := []map[string]any{}
	for _, r := range rows {
		m := map[string]any{}
		for i, c := range cols {
			m[c.Name] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func TestBuildAccessPackage(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, exportpkg.KindAccess)
	target := fx.dir.URI("packages/req-0001.zip")

	pkg, err := exportpkg.Build(ctx, fx.dir, target, fx.in)
	require.NoError(t, err)
	assert.Equal(t, target, pkg.URI)
	require.NoError(t, exportstore.Verify(ctx, fx.dir, exportstore.Object{URI: pkg.URI, SHA256: pkg.SHA256, Bytes: pkg.Bytes}))
	st, err := os.Stat(filepath.Join(fx.dir.Root, "packages/req-0001.zip"))
	require.NoError(t, err)
	assert.Equal(t, st.Size(), pkg.Bytes)

	names, files := unzip(t, fx.dir, pkg.URI)
	assert.Equal(t, []string{
		"database/customers.json", "database/customers.csv",
		"database/treatments.json", "database/treatments.csv",
		"database/invoices.json", "database/invoices.csv",
		"mailchimp/members.json", "mailchimp/members.csv",
		"summary.html", "manifest.json",
	}, names)

	// Package.Files describes every entry exactly.
	require.Len(t, pkg.Files, len(names))
	for i, f := range pkg.Files {
		assert.Equal(t, names[i], f.Name)
		assert.Equal(t, sum(files[f.Name]), f.SHA256, f.Name)
		assert.Equal(t, int64(len(files[f.Name])), f.Bytes, f.Name)
	}

	t.Run("json", func(t *testing.T) {
		for name, want := range map[string]any{
			"database/customers.json":  asObjects(customerCols, customerRows),
			"database/treatments.json": asObjects(treatmentCols, treatmentRows),
			"database/invoices.json":   asObjects(invoiceCols, nil),
			"mailchimp/members.json":   asObjects(memberCols, memberRows),
		} {
			var got any
			dec := json.NewDecoder(bytes.NewReader(files[name]))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&got), name)
			assert.Equal(t, normalise(t, want), got, name)
		}
		// Keys keep column order and each record is on its own line.
		assert.Equal(t, "[\n"+
			`{"id":10,"service":"Facial","allergy":"latex"},`+"\n"+
			`{"id":11,"service":"Massage","allergy":null}`+"\n]\n",
			string(files["database/treatments.json"]))
		assert.Equal(t, "[]\n", string(files["database/invoices.json"]))
		// Numbers keep the text the connector wrote rather than passing through float64.
		assert.Contains(t, string(files["database/customers.json"]), `"balance":1e+21`)
	})

	t.Run("csv", func(t *testing.T) {
		records := readCSV(t, files["database/customers.csv"])
		assert.Equal(t, [][]string{
			{"id", "name", "email", "note", "balance", "vip", "address"},
			{"1", "Zoë Ünal-Straße 日本", "zoe@example.com", `likes "quiet" rooms, window seat`, "-12.5", "true", `{"city":"Kraków","zip":"30-001"}`},
			{"2", `'=HYPERLINK("http://evil.example","x")`, "'+44 20 7946 0000", "line one\nline two", "0", "false", ""},
			{"3", "'@SUM(A1:A2)", "'-1", "", "1e+21", "", `["a",1]`},
		}, records)
		// RFC 4180: quoted where needed, CRLF after every record.
		assert.Equal(t, "id,service,allergy\r\n10,Facial,latex\r\n11,Massage,\r\n", string(files["database/treatments.csv"]))
		assert.Equal(t, "number,total\r\n", string(files["database/invoices.csv"]))
		assert.Equal(t, "email,status\r\nzoe@example.com,subscribed\r\n", string(files["mailchimp/members.csv"]))
	})

	t.Run("summary", func(t *testing.T) {
		html := string(files["summary.html"])
		for _, s := range []string{
			"<td>database</td><td>customers</td><td>3</td>",
			"<td>database</td><td>treatments</td><td>2</td><td>Health data <span class=\"special\">special category (Art. 9 GDPR)</span>",
			"<td>database</td><td>invoices</td><td>0</td><td>none</td>",
			"<td>mailchimp</td><td>members</td><td>1</td><td>Contact details, Marketing preferences</td>",
			"Identity, Contact details, Financial data",
			"6 records in 4 tables",
			"Salon Aurora", "privacy@aurora.example", "req-0001", "14 March 2026, 09:30 UTC",
			"Lodge a complaint with a supervisory authority",
			"Art. 6(1)(b)", "How long we keep it", "Where the data came from", "Automated decisions",
			"Transfers outside the European Economic Area",
		} {
			assert.Contains(t, html, s)
		}
		// Self-contained: nothing a browser would fetch.
		assert.NotRegexp(t, `(?i)(src=|href=|url\(|@import|https?://)`, html)
		// It describes the data; the records themselves stay in the table files.
		assert.NotContains(t, html, "zoe@example.com")
		assert.NotContains(t, html, "latex")
	})

	t.Run("manifest", func(t *testing.T) {
		var m struct {
			RequestID   string `json:"request_id"`
			Kind        string `json:"kind"`
			GeneratedAt string `json:"generated_at"`
			Rows        int64  `json:"rows"`
			Tables      []struct {
				Connector  string   `json:"connector"`
				Table      string   `json:"table"`
				Rows       int64    `json:"rows"`
				Categories []string `json:"categories"`
			} `json:"tables"`
			Files []exportpkg.File `json:"files"`
		}
		require.NoError(t, json.Unmarshal(files["manifest.json"], &m))
		assert.Equal(t, "req-0001", m.RequestID)
		assert.Equal(t, "access", m.Kind)
		assert.Equal(t, "2026-03-14T09:30:00Z", m.GeneratedAt)
		assert.Equal(t, pkg.Files[:len(pkg.Files)-1], m.Files, "every file but the manifest itself")

		var inputRows, tableRows, fileRows int64
		for _, s := range fx.in.Sources {
			for _, r := range s.Tables {
				inputRows += r.Rows
			}
		}
		for _, tb := range m.Tables {
			tableRows += tb.Rows
		}
		for _, f := range m.Files {
			fileRows += f.Rows
			if strings.HasSuffix(f.Name, ".csv") {
				assert.Equal(t, f.Rows, int64(len(readCSV(t, files[f.Name]))-1), f.Name)
			}
			if strings.HasSuffix(f.Name, ".json") {
				var rows []any
				require.NoError(t, json.Unmarshal(files[f.Name], &rows))
				assert.Equal(t, f.Rows, int64(len(rows)), f.Name)
			}
		}
		assert.Equal(t, int64(6), inputRows)
		assert.Equal(t, inputRows, m.Rows)
		assert.Equal(t, inputRows, tableRows)
		assert.Equal(t, 2*inputRows, fileRows, "each row is in one JSON and one CSV file")
		assert.Equal(t, []string{"health"}, m.Tables[1].Categories)
		assert.Equal(t, []string{}, m.Tables[2].Categories, "an empty table shows no data")
	})

	// The same input builds the same bytes, so a retried build records the same checksum.
	again, err := exportpkg.Build(ctx, fx.dir, fx.dir.URI("packages/again.zip"), fx.in)
	require.NoError(t, err)
	assert.Equal(t, pkg.SHA256, again.SHA256)
}

func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	records, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err)
	return records
}

func TestBuildPortabilityPackage(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, exportpkg.KindPortability)
	fx.in.Notice = exportpkg.Art15Notice{} // not needed for portability

	pkg, err := exportpkg.Build(ctx, fx.dir, fx.dir.URI("p.zip"), fx.in)
	require.NoError(t, err)
	names, files := unzip(t, fx.dir, pkg.URI)
	assert.NotContains(t, names, "summary.html")
	assert.Equal(t, []string{"README.txt", "manifest.json"}, names[len(names)-2:])
	readme := string(files["README.txt"])
	assert.Contains(t, readme, "req-0001")
	assert.Contains(t, readme, "database   treatments  2")
	assert.Contains(t, readme, "mailchimp  members     1")
	assert.Contains(t, readme, "manifest.json")
	assert.NotContains(t, readme, "zoe@example.com")
	assert.Equal(t, files["database/customers.json"], mustBuildAccessFile(t, "database/customers.json"),
		"table files are the same in both kinds of package")
}

func mustBuildAccessFile(t *testing.T, name string) []byte {
	fx := newFixture(t, exportpkg.KindAccess)
	pkg, err := exportpkg.Build(context.Background(), fx.dir, fx.dir.URI("a.zip"), fx.in)
	require.NoError(t, err)
	_, files := unzip(t, fx.dir, pkg.URI)
	return files[name]
}

func TestBuildRefusesTamperedInput(t *testing.T) {
	for name, tamper := range map[string]func(string) string{
		// Still valid JSON: only the checksum can tell.
		"value changed": func(s string) string { return strings.Replace(s, "Massage", "Masxage", 1) },
		// Broken JSON: the checksum, not the parse error, is reported.
		"truncated": func(s string) string { return s[:len(s)-10] },
		"row added": func(s string) string { return s + "[12,\"Peel\",\"aspirin\"]\n" },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			fx := newFixture(t, exportpkg.KindAccess)
			path := filepath.Join(fx.dir.Root, "in/database/treatments.jsonl")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, []byte(tamper(string(b))), 0o600))

			_, err = exportpkg.Build(ctx, fx.dir, fx.dir.URI("out/p.zip"), fx.in)
			require.ErrorIs(t, err, exportpkg.ErrChecksum)
			assert.Contains(t, err.Error(), "database/treatments")
			assert.NotContains(t, err.Error(), "aspirin")
			assert.NotContains(t, err.Error(), "Mas")

			// Nothing is left at the target or beside it.
			entries, err := os.ReadDir(filepath.Join(fx.dir.Root, "out"))
			require.NoError(t, err)
			assert.Empty(t, entries)
		})
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	cases := map[string]struct {
		edit func(t *testing.T, fx *fixture)
		want string
	}{
		"unknown kind":  {func(_ *testing.T, fx *fixture) { fx.in.Kind = "erasure" }, `kind "erasure"`},
		"no request id": {func(_ *testing.T, fx *fixture) { fx.in.RequestID = "" }, "request id"},
		"no time":       {func(_ *testing.T, fx *fixture) { fx.in.GeneratedAt = time.Time{} }, "generated-at"},
		"access without notice": {func(_ *testing.T, fx *fixture) { fx.in.Notice = exportpkg.Art15Notice{} },
			"controller name and contact are required"},
		"access without rights": {func(_ *testing.T, fx *fixture) { fx.in.Notice.Rights = nil }, "list of rights"},
		"connector name escapes the folder": {func(_ *testing.T, fx *fixture) { fx.in.Sources[0].Connector = "../x" },
			`connector name "../x"`},
		"no checksum": {func(_ *testing.T, fx *fixture) { fx.in.Sources[0].Tables[0].SHA256 = "" }, "no recorded checksum"},
		"row count differs": {func(_ *testing.T, fx *fixture) { fx.in.Sources[0].Tables[1].Rows = 3 },
			"database/treatments has 2 rows, recorded 3"},
		"table name differs": {func(_ *testing.T, fx *fixture) { fx.in.Sources[0].Tables[1].Table = "visits" },
			`holds table "treatments"`},
		"same table twice": {func(_ *testing.T, fx *fixture) {
			fx.in.Sources[0].Tables = append(fx.in.Sources[0].Tables, fx.in.Sources[0].Tables[0])
		}, "two files named database/customers.json"},
		"table name escapes the folder": {func(t *testing.T, fx *fixture) {
			fx.in.Sources[1].Tables[0] = writeTable(t, fx.dir, "in/bad.jsonl", "..", memberCols, nil)
		}, `table name ".."`},
		"row shorter than columns": {func(t *testing.T, fx *fixture) {
			fx.in.Sources[1].Tables[0] = writeTable(t, fx.dir, "in/bad.jsonl", "members", memberCols, [][]any{{"secret@example.com"}})
		}, "row 1 of mailchimp/members has 1 values for 2 columns"},
		"row not an array": {func(t *testing.T, fx *fixture) {
			fx.in.Sources[1].Tables[0] = writeTable(t, fx.dir, "in/bad.jsonl", "members", memberCols, [][]any{{"secret@example.com", "x"}})
			rewrite(t, fx, "in/bad.jsonl", func(s string) string {
				return strings.Replace(s, `["secret@example.com","x"]`, `{"secret@example.com":1}`, 1)
			})
		}, "reading row 1 of mailchimp/members: expected"},
		"unknown category": {func(t *testing.T, fx *fixture) {
			fx.in.Sources[1].Tables[0] = writeTable(t, fx.dir, "in/bad.jsonl", "members",
				[]connectors.Column{{Name: "x", Category: "biometric"}}, nil)
		}, `unknown category "biometric"`},
		"repeated column": {func(t *testing.T, fx *fixture) {
			fx.in.Sources[1].Tables[0] = writeTable(t, fx.dir, "in/bad.jsonl", "members",
				[]connectors.Column{{Name: "x"}, {Name: "x"}}, nil)
		}, "repeated column name"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, exportpkg.KindAccess)
			c.edit(t, &fx)
			_, err := exportpkg.Build(context.Background(), fx.dir, fx.dir.URI("out/p.zip"), fx.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "secret@example.com")
			_, statErr := os.Stat(filepath.Join(fx.dir.Root, "out/p.zip"))
			assert.True(t, errors.Is(statErr, os.ErrNotExist), "no package stored")
		})
	}
}

// rewrite changes a stored object and records its new checksum, as a connector that wrote
// malformed rows would have.
func rewrite(t *testing.T, fx *fixture, rel string, edit func(string) string) {
	t.Helper()
	path := filepath.Join(fx.dir.Root, rel)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b = []byte(edit(string(b)))
	require.NoError(t, os.WriteFile(path, b, 0o600))
	ref := &fx.in.Sources[1].Tables[0]
	ref.SHA256, ref.Bytes = sum(b), int64(len(b))
}

func TestBuildStopsWhenCanceled(t *testing.T) {
	fx := newFixture(t, exportpkg.KindAccess)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := exportpkg.Build(ctx, fx.dir, fx.dir.URI("out/p.zip"), fx.in)
	require.ErrorIs(t, err, context.Canceled)
}

func TestDefaultNoticeCoversArticle15(t *testing.T) {
	n := exportpkg.DefaultNotice("Salon Aurora", "privacy@aurora.example")
	assert.Equal(t, "Salon Aurora", n.Controller.Name)
	assert.Equal(t, "privacy@aurora.example", n.Controller.Contact)
	assert.NotEmpty(t, n.Purposes)
	for _, p := range n.Purposes {
		assert.NotEmpty(t, p.LegalBasis, p.Name)
		for _, c := range p.Categories {
			assert.True(t, c.Valid())
		}
	}
	assert.NotEmpty(t, n.Recipients)
	assert.NotEmpty(t, n.Retention.Default)
	assert.NotEmpty(t, n.Source)
	assert.NotEmpty(t, n.AutomatedDecisions)
	assert.NotEmpty(t, n.TransfersSafeguards)
	rights := strings.Join(n.Rights, "\n")
	for _, art := range []string{"Art. 15", "Art. 16", "Art. 17", "Art. 18", "Art. 20", "Art. 21", "Art. 77"} {
		assert.Contains(t, rights, art)
	}
}
