package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// lethe breaches report writes the current report (a new version only when the register has
// moved on) and any kept version again, against the real PostgreSQL.
func TestBreachesReportWritesEveryVersion(t *testing.T) {
	ctx := context.Background()
	pg := testenv.PostgresURL(t)
	st, err := store.Open(ctx, pg, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	aware := time.Date(2026, 3, 6, 16, 0, 0, 0, time.UTC)
	row := store.BreachRow{ID: "br-cli", TenantID: "salon", Title: "Stolen laptop", Status: "open", AwareAt: aware,
		OpenedBy: "dpo", OpenedAt: aware, Facts: json.RawMessage(`{}`), State: json.RawMessage(`{}`)}
	if _, err := st.Breaches().Open(ctx, st.Pool, row); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "lethe.yaml")
	os.WriteFile(cfgFile, []byte("tenants: [{id: salon, regime: gdpr, dpo_email: dpo@salon.example}]\n"), 0o600)
	env := map[string]string{"LETHE_CONFIG": cfgFile, "LETHE_SIGNING_KEY": "report-test-signing-key-0123456789abcd",
		"DATABASE_URL": pg, "LETHE_EXPORTS_DIR": filepath.Join(dir, "exports"),
		"LETHE_TEMPORAL_HOSTPORT": "127.0.0.1:1", "LETHE_KAFKA_BROKERS": "127.0.0.1:1"} // neither is reached
	report := func(args ...string) (string, []byte) {
		t.Helper()
		out := filepath.Join(dir, strings.Join(args, "_")+".out")
		stdout, stderr, code := runLethe(t, env, append([]string{"breaches", "report", "br-cli", "--actor", "dpo", "--out", out}, args...)...)
		if code != 0 {
			t.Fatalf("breaches report %v: exit %d: %s", args, code, stderr)
		}
		doc, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return stdout, doc
	}

	say, first := report()
	if !bytes.HasPrefix(first, []byte("%PDF-")) || !strings.Contains(say, "report version 1 (PDF, from content version 0)") {
		t.Fatalf("first report: %q, %q", say, first[:8])
	}
	if say, _ := report(); !strings.Contains(say, "report version 1 ") {
		t.Errorf("the same register state gave a new version: %s", say)
	}
	say, html := report("--format", "html")
	if !strings.Contains(say, "report version 2 (HTML") || !strings.Contains(string(html), "Still missing (8 of 8)") {
		t.Errorf("html report: %s", say)
	}
	if _, again := report("--version", "1"); !bytes.Equal(again, first) {
		t.Error("version 1 written again differs from what it was")
	}
	if _, stderr, code := runLethe(t, env, "breaches", "report", "br-none"); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("an unknown breach: exit %d, %q", code, stderr)
	}
	if _, stderr, code := runLethe(t, env, "breaches", "report", "br-cli", "--format", "docx"); code != 1 || !strings.Contains(stderr, "format must be one of html, pdf") {
		t.Errorf("a bad format: exit %d, %q", code, stderr)
	}
}
