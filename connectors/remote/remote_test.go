package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
)

// The value New returns must implement exactly the declared roles, for every combination:
// connectortest and the registry compare connectors.Implemented with the declaration.
func TestWrapImplementsExactlyTheDeclaredRoles(t *testing.T) {
	roles := slices.DeleteFunc(slices.Clone(connectors.AllCapabilities), func(c connectors.Capability) bool { return c == connectors.CapFind })
	for m := 0; m < 1<<len(roles); m++ {
		var caps []connectors.Capability
		for i, r := range roles {
			if m&(1<<i) != 0 {
				caps = append(caps, r)
			}
		}
		got := connectors.Implemented(&client{cfg: Config{Name: "x", Capabilities: caps}})
		if !slices.Equal(got, caps) {
			t.Fatalf("declared %v, implements %v", caps, got)
		}
	}
}

func TestWireName(t *testing.T) {
	if got := wireName("req-1:crm:erase", keyPattern, 100); got != "req-1:crm:erase" {
		t.Fatalf("a valid key was changed to %q", got)
	}
	a := wireName("req-T/sub test/conformance/erase", keyPattern, 100)
	b := wireName("req-T_sub_test_conformance_erase", keyPattern, 100)
	if !keyPattern.MatchString(a) || a == b {
		t.Fatalf("mapped key %q is invalid or collides with %q", a, b)
	}
	if again := wireName("req-T/sub test/conformance/erase", keyPattern, 100); again != a {
		t.Fatal("the same key maps to different wire keys: idempotency would be lost")
	}
	long := wireName(strings.Repeat("x/", 100), idPattern, 40)
	if !idPattern.MatchString(long) {
		t.Fatalf("mapped id %q does not fit the id pattern", long)
	}
}

func TestFailedResultsKeepTheirClass(t *testing.T) {
	failed := func(code string, permanent bool, blocks ...connectors.Block) protocol.Result {
		return protocol.Result{Action: "erase", Status: protocol.StatusFailed,
			Error: &protocol.ResultError{Message: "m", Permanent: permanent, Code: code}, Output: &protocol.Output{Blocks: blocks}}
	}
	if err := remoteError("x", failed("busy", false)); connectors.IsPermanent(err) {
		t.Errorf("busy: %v is permanent", err)
	}
	if err := remoteError("x", failed("permanent", true)); !connectors.IsPermanent(err) {
		t.Errorf("permanent: %v is retryable", err)
	}
	if err := remoteError("x", failed("unsupported", true)); !errors.Is(err, connectors.ErrUnsupported) || !connectors.IsPermanent(err) {
		t.Errorf("unsupported: %v", err)
	}
	// A remote connector's retry hint is passed on, so a runner serving the remote connector
	// forwards it to Lethe's bridge in turn.
	limited := failed("transient", false)
	limited.Error.RetryAfterSeconds = 90
	if d, ok := connectors.RetryDelay(remoteError("x", limited)); !ok || d != 90*time.Second {
		t.Errorf("retry after: got %s, %v", d, ok)
	}
	err := remoteError("x", failed("blocked", true, connectors.Block{Code: "send_queued", Reason: "r"}))
	if blocks, ok := connectors.BlocksOf(err); !ok || len(blocks) != 1 || blocks[0].Code != "send_queued" || !connectors.IsPermanent(err) {
		t.Errorf("blocked: %v", err)
	}
}

type rows struct {
	table connectors.Table
	rows  [][]any
	ended bool
}

func (r *rows) BeginTable(_ context.Context, t connectors.Table) error { r.table = t; return nil }
func (r *rows) WriteRow(_ context.Context, v []any) error              { r.rows = append(r.rows, v); return nil }
func (r *rows) EndTable(context.Context) error                         { r.ended = true; return nil }

func TestReplayChecksTheExport(t *testing.T) {
	dir, err := exportstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &client{cfg: Config{Name: "x"}, exports: dir}
	body := `{"table":"sends","columns":[{"name":"campaign","category":"marketing"},{"name":"opened"}]}
["spring",1]
["summer",0.5]
`
	p := filepath.Join(dir.Root, "r1", "x", "sends.jsonl")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte(body), 0o600)
	sum := sha256.Sum256([]byte(body))
	ref := protocol.ExportRef{URI: dir.URI("r1/x/sends.jsonl"), SHA256: hex.EncodeToString(sum[:]), Rows: 2, Table: "sends"}
	ctx := context.Background()

	var got rows
	n, err := c.replay(ctx, ref, &got)
	if err != nil || n != 2 || !got.ended {
		t.Fatalf("replay = %d, %v (ended %v)", n, err, got.ended)
	}
	if got.table.Name != "sends" || got.table.Columns[0].Category != connectors.CategoryMarketing {
		t.Fatalf("table = %+v", got.table)
	}
	if got.rows[0][1] != int64(1) || got.rows[1][1] != 0.5 {
		t.Fatalf("numbers decoded as %T %v, %T %v", got.rows[0][1], got.rows[0][1], got.rows[1][1], got.rows[1][1])
	}

	bad := ref
	bad.SHA256 = strings.Repeat("0", 64)
	var none rows
	if _, err := c.replay(ctx, bad, &none); err == nil || len(none.rows) != 0 {
		t.Fatalf("an export with the wrong checksum was replayed (%d rows, %v)", len(none.rows), err)
	}
	outside := ref
	outside.URI = "file:///etc/passwd"
	if _, err := c.replay(ctx, outside, &none); err == nil {
		t.Fatal("an export outside the export directory was read")
	}
	short := ref
	short.Rows = 3
	if _, err := c.replay(ctx, short, &rows{}); err == nil {
		t.Fatal("a file holding fewer rows than the result counts was accepted")
	}
}
