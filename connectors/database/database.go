// Package database is the connector for a PostgreSQL database that holds personal data. It is
// configured, not coded: the YAML names the tables, how the subject's rows are found, each
// column's personal-data category and erasure strategy, the queries that block erasure, the
// finders for breach notification and the retention rules. See README.md.
package database

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/connectors"
)

// Name is the registered connector name.
const Name = "database"

// Capabilities of the database connector.
var Capabilities = []connectors.Capability{
	connectors.CapAccess, connectors.CapErase, connectors.CapRectify, connectors.CapRestrict,
	connectors.CapBlockCheck, connectors.CapFind, connectors.CapPurge,
}

func init() {
	connectors.MustRegister(connectors.Info{
		Name:         Name,
		Description:  "PostgreSQL database described by configuration: tables, subject lookup, per-column erasure, blocking rules, finders and retention",
		Capabilities: Capabilities,
		NewConfig:    func() connectors.Config { return NewConfig() },
		New: func(c connectors.Config) (connectors.Connector, error) {
			return New(c.(*Config))
		},
	})
}

// Connector is the database connector. It is safe for concurrent use.
type Connector struct {
	cfg     *Config
	pool    *pgxpool.Pool
	hashKey []byte
	tables  map[string]*TableConfig
	root    *TableConfig

	mu     sync.Mutex
	schema *schemaInfo // set by a successful Check
}

var (
	_ connectors.Accessor     = (*Connector)(nil)
	_ connectors.Eraser       = (*Connector)(nil)
	_ connectors.Rectifier    = (*Connector)(nil)
	_ connectors.Restricter   = (*Connector)(nil)
	_ connectors.BlockChecker = (*Connector)(nil)
	_ connectors.Finder       = (*Connector)(nil)
	_ connectors.Purger       = (*Connector)(nil)
)

// New builds the connector from a validated config: it reads the connection string and hash
// key from the environment or files, and creates a pool that connects on first use.
func New(cfg *Config) (*Connector, error) {
	dsn, err := connectors.ReadSecret("dsn", cfg.DSNEnv, cfg.DSNFile)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error could echo the DSN, password included.
		return nil, errors.New("parsing the database connection string: invalid format")
	}
	pc.MaxConns = cfg.MaxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("creating database pool: %w", err)
	}
	c, err := newConnector(cfg, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return c, nil
}

func newConnector(cfg *Config, pool *pgxpool.Pool) (*Connector, error) {
	c := &Connector{cfg: cfg, pool: pool, tables: map[string]*TableConfig{}}
	for i := range cfg.Tables {
		t := &cfg.Tables[i]
		c.tables[t.Name] = t
	}
	c.root = c.tables[cfg.Subject.Table]
	if cfg.HashKeyEnv != "" || cfg.HashKeyFile != "" {
		k, err := connectors.ReadSecret("hash key", cfg.HashKeyEnv, cfg.HashKeyFile)
		if err != nil {
			return nil, err
		}
		if len(k) < 16 {
			return nil, errors.New("hash key must be at least 16 bytes")
		}
		c.hashKey = []byte(k)
	}
	return c, nil
}

// Name implements connectors.Connector.
func (c *Connector) Name() string { return Name }

// Close closes the pool.
func (c *Connector) Close() error {
	c.pool.Close()
	return nil
}

// schemaInfo is what Check learned from the catalog.
type schemaInfo struct {
	keyType map[string]string // table → SQL type of its key, for $1::text[]::type[]
}

// Check verifies the configuration against the database: every table and column must exist
// (unknown ones are named in the error), the ledger table is created if missing, and every
// configured query is prepared to catch mistakes before the first request.
func (c *Connector) Check(ctx context.Context) error {
	info, err := c.check(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.schema = info
	c.mu.Unlock()
	return nil
}

func (c *Connector) ready(ctx context.Context) (*schemaInfo, error) {
	c.mu.Lock()
	s := c.schema
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if err := c.Check(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.schema, nil
}

type column struct{ typ string }

func (c *Connector) check(ctx context.Context) (*schemaInfo, error) {
	cat := map[string]map[string]column{}
	rows, err := c.pool.Query(ctx, `SELECT table_name, column_name, udt_schema, udt_name
		FROM information_schema.columns WHERE table_schema = $1`, c.cfg.Schema)
	if err != nil {
		return nil, classify("reading the database catalog", err)
	}
	for rows.Next() {
		var table, col, udtSchema, udtName string
		if err := rows.Scan(&table, &col, &udtSchema, &udtName); err != nil {
			rows.Close()
			return nil, classify("reading the database catalog", err)
		}
		if cat[table] == nil {
			cat[table] = map[string]column{}
		}
		cat[table][col] = column{typ: pgx.Identifier{udtSchema, udtName}.Sanitize()}
	}
	if err := rows.Err(); err != nil {
		return nil, classify("reading the database catalog", err)
	}

	var errs *multierror.Error
	schema := c.cfg.Schema
	hasTable := func(where, table string) bool {
		if cat[table] == nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: unknown table %q in schema %q", where, table, schema))
			return false
		}
		return true
	}
	hasColumn := func(where, table, col string) {
		if col == "" || cat[table] == nil {
			return
		}
		if _, ok := cat[table][col]; !ok {
			errs = multierror.Append(errs, fmt.Errorf("%s: unknown column %q in table %q", where, col, table))
		}
	}
	info := &schemaInfo{keyType: map[string]string{}}
	s := c.cfg.Subject
	if hasTable("subject", s.Table) {
		for _, col := range []string{s.Key, s.Email, s.Phone, s.CustomerID, s.RestrictColumn} {
			hasColumn("subject", s.Table, col)
		}
	}
	for _, t := range c.cfg.Tables {
		where := "tables." + t.Name
		if !hasTable(where, t.Name) {
			continue
		}
		hasColumn(where+" key", t.Name, t.Key)
		info.keyType[t.Name] = cat[t.Name][t.Key].typ
		if t.Join != nil {
			hasColumn(where+" join", t.Name, t.Join.Column)
		}
		for _, col := range t.Columns {
			hasColumn(where, t.Name, col.Name)
		}
	}
	for _, r := range c.cfg.Retention {
		where := "retention." + r.Name
		if hasTable(where, r.Table) {
			hasColumn(where+" key", r.Table, r.Key)
			hasColumn(where+" timestamp", r.Table, r.Timestamp)
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, connectors.Permanent(fmt.Errorf("database configuration does not match the database: %w", err))
	}

	// CREATE TABLE IF NOT EXISTS races with itself (a unique violation in pg_type) when several
	// runners of one instance start at once: a transaction-scoped advisory lock serialises them.
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, c.ledger()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+c.ledger()+` (
		task_key   text PRIMARY KEY,
		action     text NOT NULL,
		request_id text NOT NULL DEFAULT '',
		tenant_id  text NOT NULL DEFAULT '',
		applied_at timestamptz NOT NULL DEFAULT now(),
		result     jsonb
	)`)
		return err
	})
	if err != nil {
		return nil, classify("creating the ledger table", err)
	}

	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, classify("checking configured queries", err)
	}
	defer conn.Release()
	prepare := func(where, sql string, params int, fields func([]string) error) {
		sd, err := conn.Conn().Prepare(ctx, "", sql)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", where, sanitize(err)))
			return
		}
		if len(sd.ParamOIDs) != params {
			errs = multierror.Append(errs, fmt.Errorf("%s: query takes %d parameters, want %d", where, len(sd.ParamOIDs), params))
		}
		if fields != nil {
			names := make([]string, len(sd.Fields))
			for i, f := range sd.Fields {
				names[i] = f.Name
			}
			if err := fields(names); err != nil {
				errs = multierror.Append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
	}
	for _, b := range c.cfg.Blocks {
		prepare("blocks."+b.Code, b.Query, 1, nil)
	}
	for _, o := range c.cfg.Objections {
		prepare("objections."+o.Purpose, o.Statement, 1, nil)
	}
	for _, f := range c.cfg.Finders {
		prepare("finders."+f.Name, f.Query, len(f.Params), func(names []string) error {
			known := 0
			for _, n := range names {
				switch n {
				case "email", "phone", "customer_id":
					known++
				default:
					return fmt.Errorf("returns column %q; want only email, phone and customer_id", n)
				}
			}
			if known == 0 {
				return errors.New("returns none of email, phone and customer_id")
			}
			return nil
		})
	}
	for i := range c.cfg.Retention {
		q := c.purgeQuery(info, &c.cfg.Retention[i])
		prepare("retention."+c.cfg.Retention[i].Name, q.eligible, len(q.args(0, 0, "")), nil)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, connectors.Permanent(fmt.Errorf("checking configured queries: %w", err))
	}
	return info, nil
}

func (c *Connector) ref(table string) string { return pgx.Identifier{c.cfg.Schema, table}.Sanitize() }
func (c *Connector) ledger() string          { return c.ref(c.cfg.LedgerTable) }

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// predicate returns the condition selecting table t's rows of the subjects whose keys are
// $1 (a text array), with t aliased as alias. Child tables reach the subject table through
// their joins.
func (c *Connector) predicate(s *schemaInfo, t *TableConfig, alias string, depth int) string {
	if t == c.root {
		return fmt.Sprintf("%s.%s = ANY($1::text[]::%s[])", alias, ident(t.Key), s.keyType[t.Name])
	}
	parent := c.tables[t.Join.Table]
	if parent == c.root {
		return fmt.Sprintf("%s.%s = ANY($1::text[]::%s[])", alias, ident(t.Join.Column), s.keyType[parent.Name])
	}
	pa := fmt.Sprintf("p%d", depth+1)
	return fmt.Sprintf("%s.%s IN (SELECT %s.%s FROM %s AS %s WHERE %s)",
		alias, ident(t.Join.Column), pa, ident(parent.Key), c.ref(parent.Name), pa, c.predicate(s, parent, pa, depth+1))
}

// depth is the number of joins from t to the subject table.
func (c *Connector) depth(t *TableConfig) int {
	d := 0
	for t.Join != nil {
		t = c.tables[t.Join.Table]
		d++
	}
	return d
}

// subjectQuery builds the query for the keys of the subject-table records matching every
// identifier the subject carries (email case-insensitively), numbering its parameters from 1.
func (c *Connector) subjectQuery(subj connectors.Subject, lock bool) (string, []any, error) {
	var conds []string
	var args []any
	add := func(col, val, format string) {
		if col == "" || val == "" {
			return
		}
		args = append(args, val)
		conds = append(conds, fmt.Sprintf(format, ident(col), len(args)))
	}
	s := c.cfg.Subject
	add(s.Email, strings.TrimSpace(subj.Email), "lower(t0.%s) = lower($%d)")
	add(s.Phone, strings.TrimSpace(subj.Phone), "t0.%s = $%d")
	add(s.CustomerID, strings.TrimSpace(subj.CustomerID), "t0.%s = $%d")
	if len(conds) == 0 {
		return "", nil, connectors.Permanent(connectors.ErrNoSubject)
	}
	q := fmt.Sprintf("SELECT t0.%s::text FROM %s AS t0 WHERE %s ORDER BY 1 LIMIT %d",
		ident(s.Key), c.ref(s.Table), strings.Join(conds, " AND "), c.cfg.MaxSubjects+1)
	if lock {
		q += " FOR UPDATE"
	}
	return q, args, nil
}

// subjects returns the keys of the records matching the subject; more than MaxSubjects is
// ambiguous.
func (c *Connector) subjects(ctx context.Context, tx pgx.Tx, subj connectors.Subject, lock bool) ([]string, error) {
	q, args, err := c.subjectQuery(subj, lock)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, classify("finding the subject", ctxErr(ctx, err))
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify("finding the subject", ctxErr(ctx, err))
	}
	return keys, c.unambiguous(keys)
}

func (c *Connector) unambiguous(keys []string) error {
	if len(keys) > c.cfg.MaxSubjects {
		return connectors.Permanent(fmt.Errorf("subject is ambiguous: more than %d records of %s match (max_subjects)", c.cfg.MaxSubjects, c.cfg.Subject.Table))
	}
	return nil
}
