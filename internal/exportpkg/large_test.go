package exportpkg_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/exportpkg"
)

// heapProbe records the largest HeapInuse seen while a build reads and writes, sampling on
// I/O calls rather than on a timer so the measurement needs no sleeping goroutine.
type heapProbe struct {
	calls int
	peak  uint64
}

func (p *heapProbe) sample() {
	p.calls++
	if p.calls%16 != 0 {
		return
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	p.peak = max(p.peak, m.HeapInuse)
}

type probedStore struct {
	exportstore.Store
	p *heapProbe
}

func (s probedStore) Create(ctx context.Context, uri string) (exportstore.Writer, error) {
	w, err := s.Store.Create(ctx, uri)
	if err != nil {
		return nil, err
	}
	return probedWriter{w, s.p}, nil
}

func (s probedStore) Open(ctx context.Context, uri string) (io.ReadCloser, error) {
	r, err := s.Store.Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	return probedReader{r, s.p}, nil
}

type probedWriter struct {
	exportstore.Writer
	p *heapProbe
}

func (w probedWriter) Write(b []byte) (int, error) { w.p.sample(); return w.Writer.Write(b) }

type probedReader struct {
	io.ReadCloser
	p *heapProbe
}

func (r probedReader) Read(b []byte) (int, error) { r.p.sample(); return r.ReadCloser.Read(b) }

var largeCols = []connectors.Column{
	{Name: "id"},
	{Name: "name", Category: connectors.CategoryIdentity},
	{Name: "email", Category: connectors.CategoryContact},
	{Name: "note"},
	{Name: "amount", Category: connectors.CategoryFinancial},
	{Name: "allergy", Category: connectors.CategoryHealth},
}

// writeLargeTable stores rows rows of about 400 bytes each.
func writeLargeTable(tb testing.TB, dir *exportstore.Dir, rows int) protocol.ExportRef {
	tb.Helper()
	w, err := dir.Create(context.Background(), dir.URI("in/database/visits.jsonl"))
	require.NoError(tb, err)
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	require.NoError(tb, enc.Encode(map[string]any{"table": "visits", "columns": largeCols}))
	filler := strings.Repeat("Prefers the window seat, \"quiet\" music; arrives early, ", 6)
	for i := range rows {
		require.NoError(tb, enc.Encode([]any{
			i, fmt.Sprintf("Customer %d Ünal", i), fmt.Sprintf("c%d@example.com", i),
			fmt.Sprintf("visit %d: %s", i, filler[i%50:]), float64(i%9973) / 100, []any{"latex", nil}[i%2],
		}))
	}
	require.NoError(tb, bw.Flush())
	obj, err := w.Commit()
	require.NoError(tb, err)
	return protocol.ExportRef{URI: obj.URI, SHA256: obj.SHA256, Bytes: obj.Bytes, Rows: int64(rows), Table: "visits"}
}

func largeInput(ref protocol.ExportRef) exportpkg.Input {
	return exportpkg.Input{
		RequestID: "req-large", Kind: exportpkg.KindAccess, GeneratedAt: generatedAt,
		Notice:  exportpkg.DefaultNotice("Salon Aurora", "privacy@aurora.example"),
		Sources: []exportpkg.Source{{Connector: "database", Tables: []protocol.ExportRef{ref}}},
	}
}

// A table larger than the memory bound builds without ever holding it: a build that loaded the
// table, or either output file, would exceed the bound on its own.
func TestBuildLargeTableInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and packages about 80 MB")
	}
	const rows, bound = 200_000, 64 << 20
	dir, err := exportstore.NewDir(t.TempDir())
	require.NoError(t, err)
	ref := writeLargeTable(t, dir, rows)
	require.Greater(t, ref.Bytes, int64(bound), "the input must not fit in the bound")

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	probe := &heapProbe{}
	pkg, err := exportpkg.Build(context.Background(), probedStore{dir, probe}, dir.URI("out/large.zip"), largeInput(ref))
	require.NoError(t, err)
	growth := int64(probe.peak) - int64(before.HeapInuse)
	t.Logf("input %d MiB, package %d MiB, peak heap growth %.1f MiB over %d samples",
		ref.Bytes>>20, pkg.Bytes>>20, float64(growth)/(1<<20), probe.calls/16)
	assert.Less(t, growth, int64(bound))
	require.Greater(t, probe.calls, 1000, "the probe sampled throughout the build")

	require.NoError(t, exportstore.Verify(context.Background(), dir, exportstore.Object{URI: pkg.URI, SHA256: pkg.SHA256, Bytes: pkg.Bytes}))
	require.Len(t, pkg.Files, 4)
	assert.Equal(t, int64(rows), pkg.Files[0].Rows)
	assert.Equal(t, int64(rows), pkg.Files[1].Rows)
	assert.Greater(t, pkg.Files[0].Bytes, ref.Bytes, "the JSON file holds every row, keyed")
}

// BenchmarkBuild reports throughput and the peak heap a build reaches.
//
//	go test ./internal/exportpkg -run '^$' -bench Build -benchtime 3x
func BenchmarkBuild(b *testing.B) {
	const rows = 50_000
	dir, err := exportstore.NewDir(b.TempDir())
	require.NoError(b, err)
	ref := writeLargeTable(b, dir, rows)
	in := largeInput(ref)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	probe := &heapProbe{}
	store := probedStore{dir, probe}
	b.SetBytes(ref.Bytes)
	n := 0
	for b.Loop() {
		if _, err := exportpkg.Build(context.Background(), store, dir.URI(fmt.Sprintf("out/%d.zip", n)), in); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(rows)*float64(n)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(int64(probe.peak)-int64(before.HeapInuse))/(1<<20), "peak-heap-MiB")
}
