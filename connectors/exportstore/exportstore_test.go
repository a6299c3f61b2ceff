package exportstore_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/connectors/exportstore"
)

func TestCommitIsAtomicAndChecksummed(t *testing.T) {
	ctx := context.Background()
	d, err := exportstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	uri := d.URI("r1/database/bookings.jsonl")
	w, err := d.Create(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello ")
	if _, err := d.Open(ctx, uri); err == nil {
		t.Fatal("object visible before Commit")
	}
	io.WriteString(w, "world")
	o, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	// sha256("hello world")
	if o.SHA256 != "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9" || o.Bytes != 11 {
		t.Fatalf("object = %+v", o)
	}
	if err := exportstore.Verify(ctx, d, o); err != nil {
		t.Fatal(err)
	}
	p := strings.TrimPrefix(o.URI, "file://")
	os.WriteFile(p, []byte("tampered"), 0o600)
	if err := exportstore.Verify(ctx, d, o); err == nil {
		t.Fatal("tampered object verified")
	}
}

func TestAbortLeavesNothingAndOutsideRootRefused(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, _ := exportstore.NewDir(root)
	w, err := d.Create(ctx, d.URI("a/b.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "partial")
	w.Abort()
	entries, _ := os.ReadDir(filepath.Join(root, "a"))
	if len(entries) != 0 {
		t.Fatalf("abort left %d files", len(entries))
	}
	for _, uri := range []string{"file:///etc/passwd", d.URI("../escape"), "s3://bucket/x", "file://" + root + "/../x"} {
		if _, err := d.Create(ctx, uri); err == nil {
			t.Errorf("Create(%q) accepted a location outside the store", uri)
		}
	}
}

func TestWithinRefusesEveryWayOutOfThePrefix(t *testing.T) {
	prefix := "file:///exports/salon/r1/database/"
	for uri, want := range map[string]bool{
		"file:///exports/salon/r1/database/customers.jsonl":              true,
		"file:///exports/salon/r1/database/sub/bookings.jsonl":           true,
		"file:///exports/salon/r2/database/customers.jsonl":              false, // another request
		"file:///exports/salon/r1/mailchimp/members.jsonl":               false, // another connector
		"file:///exports/salon/r1/database/../../r2/database/x.jsonl":    false,
		"file:///exports/salon/r1/database/%2e%2e/%2e%2e/r2/x.jsonl":     false,
		"file:///exports/salon/r1/database":                              false,
		"file:///exports/salon/r1/databasex/customers.jsonl":             false,
		"file://other/exports/salon/r1/database/customers.jsonl":         false,
		"s3:///exports/salon/r1/database/customers.jsonl":                false,
		"file:///exports/salon/r1/database/customers.jsonl?x=../../r2":   false,
		"file:///exports/salon/r1/database/customers.jsonl#../../../r2/": false,
	} {
		if got := exportstore.Within(uri, prefix); got != want {
			t.Errorf("Within(%q) = %v, want %v", uri, got, want)
		}
	}
}
