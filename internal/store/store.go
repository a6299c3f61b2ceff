// Package store is Lethe's PostgreSQL access: the connection pool and the schema migrations.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Store holds the pool of connections to Lethe's own database.
type Store struct {
	Pool *pgxpool.Pool
}

// Open connects and verifies the connection, so a bad URL fails at start rather than at the
// first request. Errors never include the URL, which may hold a password.
func Open(ctx context.Context, url string, maxConns int32) (*Store, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the database URL: invalid connection string")
	}
	if maxConns > 0 {
		pc.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s:%d: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, err)
	}
	return &Store{Pool: pool}, nil
}

// Close releases the pool.
func (s *Store) Close() { s.Pool.Close() }

// Name identifies the dependency in readiness reports.
func (s *Store) Name() string { return "postgres" }

// Check pings the database, for /readyz.
func (s *Store) Check(ctx context.Context) error {
	var one int
	return s.Pool.QueryRow(ctx, "SELECT 1").Scan(&one)
}
