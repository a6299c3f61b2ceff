package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

func TestMigrateTwiceAppliesOnce(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, testenv.PostgresURL(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	all, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Migrate(ctx)
	if err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	if len(first) != len(all) || len(all) == 0 {
		t.Fatalf("first run applied %v, want all %d migrations", first, len(all))
	}
	second, err := s.Migrate(ctx)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(second) != 0 {
		t.Fatalf("second run applied %v, want nothing", second)
	}
	var n int
	if err := s.Pool.QueryRow(ctx, "SELECT count(*) FROM lethe_schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(all) {
		t.Fatalf("lethe_schema_migrations has %d rows, want %d", n, len(all))
	}
	// The schema is really there.
	if _, err := s.Pool.Exec(ctx, "INSERT INTO audit_events (tenant_id, actor, action) VALUES ('t', 'test', 'migrated')"); err != nil {
		t.Fatalf("audit_events not usable after migration: %v", err)
	}
}

func TestMigrateConcurrentStartsApplyEachOnce(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	const replicas = 4
	applied := make([][]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := 0; i < replicas; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := store.Open(ctx, url, 2)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			applied[i], errs[i] = s.Migrate(ctx)
		}(i)
	}
	wg.Wait()
	total := 0
	for i := range applied {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	all, _ := store.Migrations()
	if total != len(all) {
		t.Fatalf("replicas applied %d migrations in total, want exactly %d", total, len(all))
	}
}

func TestOpenBadURLNamesNoPassword(t *testing.T) {
	_, err := store.Open(context.Background(), "postgres://lethe:s3cret-pw@127.0.0.1:1/nodb?connect_timeout=2", 1)
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error leaks the password: %v", err)
	}
}
