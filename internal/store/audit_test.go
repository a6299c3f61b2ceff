package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// appendN appends n events for tenant with keys tenant:1..n.
func appendN(t *testing.T, s *store.Store, tenant string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		ok, err := s.Audit().Append(context.Background(), s.Pool, store.Event{
			Key: fmt.Sprintf("%s:%d", tenant, i), TenantID: tenant, Actor: "staff", Action: "request.approved",
			RequestID: fmt.Sprintf("req-%d", i), Detail: map[string]any{"n": i},
		})
		if err != nil || !ok {
			t.Fatalf("append %d: %v %v", i, ok, err)
		}
	}
}

// tamper runs sql with the audit triggers off, as a superuser with direct access could.
func tamper(t *testing.T, s *store.Store, sql string) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), s.Pool, func(tx pgx.Tx) error {
		for _, q := range append([]string{"SET LOCAL session_replication_role = replica"}, strings.Split(sql, ";")...) {
			if _, err := tx.Exec(context.Background(), q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tampering (%s): %v", sql, err)
	}
}

func TestAuditVerifyReportsTampering(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"edited", `UPDATE audit_events SET actor = 'someone else' WHERE event_key = 'salon:3'`, `key salon:3`},
		{"deleted", `DELETE FROM audit_events WHERE event_key = 'salon:3'`, `key salon:4`},
		{"deleted last", `DELETE FROM audit_events WHERE event_key = 'salon:5'`, `latest events were deleted`},
		{"reordered", `UPDATE audit_events SET seq = -1 WHERE event_key = 'salon:2'; UPDATE audit_events SET seq = 2 WHERE event_key = 'salon:3'; UPDATE audit_events SET seq = 3 WHERE event_key = 'salon:2'`, `key salon:3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.Store(t)
			appendN(t, s, "salon", 5)
			appendN(t, s, "studio", 2)
			if n, err := s.Audit().Verify(ctx, ""); err != nil || n != 7 {
				t.Fatalf("before tampering: verified %d, %v", n, err)
			}
			tamper(t, s, tc.sql)
			_, err := s.Audit().Verify(ctx, "salon")
			var broken *store.BrokenLink
			if !errors.As(err, &broken) || broken.TenantID != "salon" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("verify after %s: %v, want a broken link naming %q", tc.name, err, tc.want)
			}
			t.Log(err)
			if _, err := s.Audit().Verify(ctx, "studio"); err != nil {
				t.Fatalf("the other tenant's chain: %v", err)
			}
		})
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	appendN(t, s, "salon", 2)
	for _, sql := range []string{
		`UPDATE audit_events SET actor = 'x'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
	} {
		_, err := s.Pool.Exec(ctx, sql)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v, want it refused as append-only", sql, err)
		}
	}
	if n, err := s.Audit().Verify(ctx, ""); err != nil || n != 2 {
		t.Fatalf("verify: %d %v", n, err)
	}
}

func TestAuditAppendIsIdempotentAndInTheCallersTransaction(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	ev := store.Event{Key: "k1", TenantID: "salon", Actor: "lethe", Action: "request.received", RequestID: "r1"}
	for i := 0; i < 2; i++ {
		if ok, err := s.Audit().Append(ctx, s.Pool, ev); err != nil || ok != (i == 0) {
			t.Fatalf("append %d: recorded %v, %v", i, ok, err)
		}
	}
	// Rolled back with the caller's transaction: nothing recorded, the chain head unmoved.
	boom := errors.New("boom")
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := s.Audit().Append(ctx, tx, store.Event{Key: "k2", TenantID: "salon", Actor: "lethe", Action: "x"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if ok, _ := s.Audit().Recorded(ctx, "k2"); ok {
		t.Fatal("an append rolled back with its transaction is in the trail")
	}
	// The tenant of an event about a request is the request's; an unknown request records nothing.
	if ok, err := s.Audit().Append(ctx, s.Pool, store.Event{Key: "k3", Actor: "mailgun", Action: "mail.delivered", RequestID: "nope"}); err != nil || ok {
		t.Fatalf("event about an unknown request: %v %v", ok, err)
	}
	if n, err := s.Audit().Verify(ctx, ""); err != nil || n != 1 {
		t.Fatalf("verify: %d %v", n, err)
	}
}

func TestAuditConcurrentAppendsKeepOneChain(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
					_, err := s.Audit().Append(ctx, tx, store.Event{Key: fmt.Sprintf("w%d:%d", w, i), TenantID: "salon", Actor: "lethe", Action: "x", At: time.Now()})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := s.Audit().Verify(ctx, "salon"); err != nil || n != writers*each {
		t.Fatalf("verify: %d events, %v; want %d and an unbroken chain", n, err, writers*each)
	}
}

func TestAuditListFilters(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	appendN(t, s, "salon", 5)
	appendN(t, s, "studio", 1)
	got, err := s.Audit().List(ctx, store.AuditFilter{TenantID: "salon", RequestID: "req-2"})
	if err != nil || len(got) != 1 || got[0].Key != "salon:2" {
		t.Fatalf("by request: %+v %v", got, err)
	}
	page, err := s.Audit().List(ctx, store.AuditFilter{TenantID: "salon", Limit: 2})
	if err != nil || len(page) != 2 || page[0].Key != "salon:5" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	next, err := s.Audit().List(ctx, store.AuditFilter{TenantID: "salon", Limit: 10, Before: page[1].ID})
	if err != nil || len(next) != 3 || next[0].Key != "salon:3" {
		t.Fatalf("next page: %+v %v", next, err)
	}
}

// Events recorded before the chain existed are chained by its migration, in the order recorded.
func TestAuditMigrationChainsEarlierEvents(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, testenv.PostgresURL(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `CREATE TABLE lethe_schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version >= 13 {
			break
		}
		if _, err := s.Pool.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := s.Pool.Exec(ctx, `INSERT INTO lethe_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, m.Version, m.Name, m.Checksum); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO audit_events (tenant_id, actor, action, request_id, event_key) VALUES ('salon', 'lethe', 'request.received', 'R-1', 'R-1:received')`,
		`INSERT INTO audit_events (tenant_id, actor, action, detail) VALUES ('', 'ops', 'worker.self_check', '{"postgres": "ok"}')`,
		`INSERT INTO audit_events (tenant_id, actor, action, request_id) VALUES ('salon', 'dana', 'request.approved', 'R-1')`,
	} {
		if _, err := s.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Audit().Verify(ctx, ""); err != nil || n != 3 {
		t.Fatalf("verify after the migration: %d events, %v", n, err)
	}
	appendN(t, s, "salon", 1)
	got, err := s.Audit().List(ctx, store.AuditFilter{TenantID: "salon"})
	if err != nil || len(got) != 3 || got[2].Action != "request.received" || got[2].Seq != 1 || got[1].Seq != 2 || got[0].Seq != 3 || got[0].PrevHash != got[1].Hash {
		t.Fatalf("salon's chain: %+v %v", got, err)
	}
	if n, err := s.Audit().Verify(ctx, ""); err != nil || n != 4 {
		t.Fatalf("verify after a new event: %d events, %v", n, err)
	}
}

// The README's grants for a separate application role: it appends (the trigger writes the
// chain head for it) and verifies, and cannot change the trail or the chain heads.
func TestAuditApplicationRoleGrants(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	role := "lethe_app_" + testenv.Suffix()
	id := pgx.Identifier{role}.Sanitize()
	var db string
	if err := s.Pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE ROLE " + id + " LOGIN PASSWORD 'app-test-password'",
		"GRANT CONNECT ON DATABASE " + pgx.Identifier{db}.Sanitize() + " TO " + id,
		"GRANT USAGE ON SCHEMA public TO " + id,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + id,
		"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM " + id,
		"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_chain_heads FROM " + id,
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + id,
	} {
		if _, err := s.Pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = s.Pool.Exec(context.Background(), "DROP OWNED BY "+id)
		_, _ = s.Pool.Exec(context.Background(), "DROP ROLE "+id)
	})
	cfg := s.Pool.Config().ConnConfig.Copy()
	cfg.User, cfg.Password = role, "app-test-password"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if ok, err := (store.Audit{}).Append(ctx, conn, store.Event{Key: "k", TenantID: "salon", Actor: "lethe", Action: "request.received"}); err != nil || !ok {
		t.Fatalf("the application role appends: %v %v", ok, err)
	}
	for _, q := range []string{
		"UPDATE audit_events SET actor = 'x'",
		"UPDATE audit_chain_heads SET seq = 0",
		"SET session_replication_role = replica",
	} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Fatalf("the application role may %s", q)
		}
	}
	if n, err := s.Audit().Verify(ctx, ""); err != nil || n != 1 {
		t.Fatalf("verify: %d %v", n, err)
	}
}
