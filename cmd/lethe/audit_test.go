package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// auditDB is a migrated database holding five events of tenant salon and two of studio.
func auditDB(t *testing.T) (*store.Store, map[string]string) {
	t.Helper()
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	s, err := store.Open(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"salon", "studio"} {
		for i := 1; i <= map[string]int{"salon": 5, "studio": 2}[tenant]; i++ {
			actor := "lethe"
			if i%2 == 0 {
				actor = "dana"
			}
			if _, err := s.Audit().Append(ctx, s.Pool, store.Event{Key: fmt.Sprintf("%s:%d", tenant, i), TenantID: tenant, Actor: actor,
				Action: "request.approved", RequestID: fmt.Sprintf("R-%s-%d", tenant, i), Detail: map[string]any{"note": "a, \"quoted\" note"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s, map[string]string{"LETHE_SIGNING_KEY": "main-test-signing-key-0123456789abcdef", "DATABASE_URL": url, "LETHE_KAFKA_BROKERS": strings.Join(testenv.KafkaBrokers(t), ",")}
}

func TestAuditVerifyNamesTheBrokenLink(t *testing.T) {
	for _, c := range []struct{ name, sql, want string }{
		{"edited", `UPDATE audit_events SET detail = '{}' WHERE event_key = 'salon:2'`, `broken at event 4 (seq 2, key salon:2): its fields do not match its hash`},
		{"deleted", `DELETE FROM audit_events WHERE event_key = 'salon:2'`, `(seq 3, key salon:3): sequence jumps from 1 to 3: an event was deleted`},
		{"reordered", `UPDATE audit_events SET seq = -1 WHERE event_key = 'salon:4'; UPDATE audit_events SET seq = 4 WHERE event_key = 'salon:5'; UPDATE audit_events SET seq = 5 WHERE event_key = 'salon:4'`, `(seq 4, key salon:5): its fields do not match its hash`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, env := auditDB(t)
			out, errOut, code := runLethe(t, env, "audit", "verify")
			if code != 0 || !strings.Contains(out, "7 events verified") {
				t.Fatalf("intact trail: exit %d, %q %q", code, out, errOut)
			}
			err := pgx.BeginFunc(context.Background(), s.Pool, func(tx pgx.Tx) error {
				for _, q := range append([]string{"SET LOCAL session_replication_role = replica"}, strings.Split(c.sql, ";")...) {
					if _, err := tx.Exec(context.Background(), q); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			_, errOut, code = runLethe(t, env, "audit", "verify")
			if code == 0 || !strings.Contains(errOut, `audit chain of tenant "salon" `+"broken at") || !strings.Contains(errOut, c.want) {
				t.Fatalf("after the event was %s: exit %d, stderr %q; want non-zero naming %q", c.name, code, errOut, c.want)
			}
			if _, errOut, code = runLethe(t, env, "audit", "verify", "--tenant", "studio"); code != 0 {
				t.Fatalf("the other tenant's chain: exit %d %s", code, errOut)
			}
		})
	}
}

func TestAuditListFiltersAndCSV(t *testing.T) {
	_, env := auditDB(t)
	out, errOut, code := runLethe(t, env, "audit", "list", "--tenant", "salon", "--actor", "dana", "--csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, out)
	}
	if len(rows) != 3 || rows[0][0] != "id" || rows[1][9] != "salon:4" || rows[2][9] != "salon:2" || rows[1][10] != `{"note":"a, \"quoted\" note"}` {
		t.Fatalf("salon events by dana, newest first: %q", rows)
	}
	out, _, code = runLethe(t, env, "audit", "list", "--request", "R-studio-1", "--since", "2000-01-01", "--until", "2999-01-01T00:00:00Z")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "R-studio-1") {
		t.Fatalf("by request: exit %d %q", code, out)
	}
	out, _, _ = runLethe(t, env, "audit", "list", "--action", "request.denied", "--csv")
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("no denials: want only the header, got %q", out)
	}
	if _, errOut, code = runLethe(t, env, "audit", "list", "--since", "yesterday"); code == 0 || !strings.Contains(errOut, "--since") {
		t.Fatalf("bad --since: exit %d %q", code, errOut)
	}
}

// A filter that matches nothing says so, and verifying a tenant without a single event is not
// reported as an intact trail: a mistyped tenant must not read as proof.
func TestAuditSaysWhenNothingMatched(t *testing.T) {
	_, env := auditDB(t)
	if out, errOut, code := runLethe(t, env, "audit", "list", "--request", "R-none"); code != 0 || out != "no audit events match\n" {
		t.Errorf("empty list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := runLethe(t, env, "audit", "verify", "--tenant", "salom"); code != 1 || errOut != "lethe: --tenant salom: no audit events of this tenant to verify\n" {
		t.Errorf("unknown tenant: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
