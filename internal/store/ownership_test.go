package store_test

import (
	"fmt"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/internal/store"
)

// Lethe's own tables are read and written only here: no other package holds SQL against them.
// SQL against customer databases (the database connector, the demo) and the local stack's
// database bootstrap are not Lethe's tables and are not walked.
var notLethes = []string{"internal/store", "connectors/database", "deploy/demo", "internal/localstack"}

var (
	createTable = regexp.MustCompile(`(?i)CREATE TABLE\s+(?:IF NOT EXISTS\s+)?([a-z_][a-z0-9_]*)`)
	// Lethe writes SQL keywords in capitals, which keeps prose out of the match.
	tableUse = regexp.MustCompile(`\b(?:FROM|INTO|UPDATE|JOIN|TABLE|TRUNCATE)\s+(?:ONLY\s+)?([a-z_][a-z0-9_]*)`)
)

func TestOnlyStoreTouchesLethesTables(t *testing.T) {
	tables := lethesTables(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || name == "bin" || name == "testdata" || slices.Contains(notLethes, rel)) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && rel != "." {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		uses, err := sqlUses(path, tables)
		if err != nil {
			return err
		}
		for _, u := range uses {
			found = append(found, rel+":"+u)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s: SQL against Lethe's own tables belongs in internal/store", f)
	}
}

// lethesTables are the tables the migrations create.
func lethesTables(t *testing.T) map[string]bool {
	t.Helper()
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	for _, m := range ms {
		for _, c := range createTable.FindAllStringSubmatch(m.SQL, -1) {
			tables[strings.ToLower(c[1])] = true
		}
	}
	if !tables["requests"] || !tables["audit_events"] {
		t.Fatalf("found tables %v in the migrations, want requests and audit_events among them", tables)
	}
	return tables
}

// sqlUses lists "line: table" for every string literal in the Go file at path that names one
// of tables after a SQL keyword.
func sqlUses(path string, tables map[string]bool) ([]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	file := fset.AddFile(path, -1, len(src))
	var s scanner.Scanner
	var bad error
	s.Init(file, src, func(pos token.Position, msg string) { bad = fmt.Errorf("%s: %s", pos, msg) }, 0)
	var out []string
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok != token.STRING {
			continue
		}
		line := fset.Position(pos).Line
		for _, m := range tableUse.FindAllStringSubmatchIndex(lit, -1) {
			if name := lit[m[2]:m[3]]; tables[name] {
				out = append(out, fmt.Sprintf("%d: %s", line+strings.Count(lit[:m[0]], "\n"), name))
			}
		}
	}
	return out, bad
}

// The guard sees SQL in any string literal, also one split by concatenation or over lines,
// and not prose that happens to name a table.
func TestOwnershipGuardFindsSQL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.go")
	src := "package x\n\nconst a = \"reading from requests\"\n\nvar b = `SELECT id,\n\tstatus ` + `FROM requests r JOIN request_subjects s`\n\n// UPDATE requests SET\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	uses, err := sqlUses(path, map[string]bool{"requests": true, "request_subjects": true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"6: requests", "6: request_subjects"}; !slices.Equal(uses, want) {
		t.Fatalf("found %q, want %q", uses, want)
	}
}
