package database

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/lethe-privacy/lethe/connectors"
)

// Config is the database connector's configuration (YAML). Identifiers are matched exactly
// against the database's catalog at Check; SQL in blocks, finders and retention is written
// by the operator and only ever receives values as parameters.
type Config struct {
	// DSNEnv or DSNFile names where the connection string is; it may hold a password, so
	// it is never written in the configuration itself.
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`
	// HashKeyEnv or HashKeyFile names where the tenant's secret for keyed hashes is.
	// Required when any column uses the hash strategy.
	HashKeyEnv  string `yaml:"hash_key_env"`
	HashKeyFile string `yaml:"hash_key_file"`
	// Schema holding the tables (default public).
	Schema string `yaml:"schema"`
	// LedgerTable records applied task keys, in the same transaction as the change, so that
	// a retried task is not applied twice (default lethe_applied_tasks; created by Check).
	LedgerTable string `yaml:"ledger_table"`
	// MaxSubjects is how many records of the subject table one subject may match; more is
	// refused as ambiguous (default 1).
	MaxSubjects int `yaml:"max_subjects"`
	// MaxConns bounds the connection pool (default 4).
	MaxConns int32 `yaml:"max_conns"`

	Subject SubjectConfig `yaml:"subject"`
	Tables  []TableConfig `yaml:"tables"`
	Blocks  []BlockRule   `yaml:"blocks"`
	// Objections are statements run when the subject objects to a purpose (restrict with
	// params {"purpose": ...}), e.g. marketing consent set to withdrawn; $1 is the subject's key.
	Objections []ObjectionRule `yaml:"objections"`
	Finders    []FinderConfig  `yaml:"finders"`
	Retention  []RetentionRule `yaml:"retention"`
	// TimeZone is where times filled into block reasons are shown (an IANA name such as
	// Europe/Berlin, default UTC): the subject reads them, so the business's own zone.
	TimeZone string `yaml:"time_zone"`

	zone *time.Location // TimeZone, set by Validate
}

// location is TimeZone's zone; UTC for a config Validate has not seen.
func (c *Config) location() *time.Location {
	if c.zone == nil {
		return time.UTC
	}
	return c.zone
}

// SubjectConfig says how a Subject is found in the subject (root) table. Every identifier the
// subject carries that has a column here must match (email case-insensitively).
type SubjectConfig struct {
	Table      string `yaml:"table"`
	Key        string `yaml:"key"` // primary key, referenced by child tables (default id)
	Email      string `yaml:"email"`
	Phone      string `yaml:"phone"`
	CustomerID string `yaml:"customer_id"`
	// RestrictColumn, a timestamp column set while processing is restricted.
	RestrictColumn string `yaml:"restrict_column"`
}

// Table-level erasure actions.
const (
	OnEraseAnonymise = "anonymise" // apply the column strategies, keep the rows
	OnEraseDelete    = "delete"    // delete the subject's rows
)

// TableConfig is one table holding the subject's data.
type TableConfig struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"` // primary key (default id)
	// Join links a child table to the subject table (or to another configured table).
	Join *JoinConfig `yaml:"join"`
	// OnErase is anonymise (default) or delete.
	OnErase string `yaml:"on_erase"`
	// Keep marks records that must be retained (invoices, payments): rows stay, identity
	// and contact columns are anonymised, financial columns are left intact.
	Keep    bool           `yaml:"keep"`
	Columns []ColumnConfig `yaml:"columns"`
}

// JoinConfig: this table's Column references Table's key (default: the subject table).
type JoinConfig struct {
	Column string `yaml:"column"`
	Table  string `yaml:"table"`
}

// Erasure strategies per column.
const (
	StrategyNull    = "null"    // set to NULL
	StrategyReplace = "replace" // set to Value
	StrategyHash    = "hash"    // HMAC-SHA256 of the normalised value with the tenant secret
	StrategyRedact  = "redact"  // regexp Pattern replaced by Replacement
)

// ColumnConfig is one exported column and how it is erased.
type ColumnConfig struct {
	Name     string              `yaml:"name"`
	Category connectors.Category `yaml:"category"`
	// Erase is the strategy; empty leaves the column as it is (for non-personal or
	// financial columns).
	Erase       string  `yaml:"erase"`
	Value       *string `yaml:"value"`
	Pattern     string  `yaml:"pattern"`
	Replacement string  `yaml:"replacement"`
	// Rectify allows the subject to correct this column.
	Rectify bool `yaml:"rectify"`

	re *regexp.Regexp
}

// BlockRule is a query that blocks erasure while it returns rows. It receives the subject's
// key as $1. Each row gives one block; {column} in Reason is replaced by that row's value.
type BlockRule struct {
	Code   string `yaml:"code"`
	Reason string `yaml:"reason"`
	Query  string `yaml:"query"`
}

// ObjectionRule stops processing for one purpose.
type ObjectionRule struct {
	Purpose   string `yaml:"purpose"`
	Statement string `yaml:"statement"`
}

// FinderConfig is a named query finding subjects by criteria (for breach notification). It
// returns columns named email, phone and/or customer_id; Params name the task params passed
// as $1, $2, ...
type FinderConfig struct {
	Name   string   `yaml:"name"`
	Query  string   `yaml:"query"`
	Params []string `yaml:"params"`
}

// RetentionRule acts on rows of Table whose Timestamp is older than OlderThan (or the
// tenant's period a purge command carries), BatchSize at a time. Where, if set, is an extra
// SQL condition; $1 in it is the period in seconds. Action is delete (default), anonymise (the
// table's null and replace strategies) or erase (the subject table only: each subject erased
// as an erasure would, blocking rules respected).
type RetentionRule struct {
	Name      string `yaml:"name"`
	Table     string `yaml:"table"`
	Key       string `yaml:"key"` // default id
	Timestamp string `yaml:"timestamp"`
	OlderThan Period `yaml:"older_than"`
	Where     string `yaml:"where"`
	BatchSize int    `yaml:"batch_size"`
	Action    string `yaml:"action"`
}

// Period is a retention period (connectors.Period): a Go duration, days ("730d") or years.
type Period = connectors.Period

// NewConfig returns a Config with defaults.
func NewConfig() *Config {
	return &Config{Schema: "public", LedgerTable: "lethe_applied_tasks", MaxSubjects: 1, MaxConns: 4}
}

var codePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Validate checks the configuration without a database. Table and column names are checked
// against the database by Check.
func (c *Config) Validate() error {
	var errs *multierror.Error
	add := func(format string, a ...any) { errs = multierror.Append(errs, fmt.Errorf(format, a...)) }

	if (c.DSNEnv == "") == (c.DSNFile == "") {
		add("exactly one of dsn_env and dsn_file is required")
	}
	if c.HashKeyEnv != "" && c.HashKeyFile != "" {
		add("hash_key_env and hash_key_file are exclusive")
	}
	if c.Schema == "" || c.LedgerTable == "" {
		add("schema and ledger_table must not be empty")
	}
	if c.MaxSubjects < 1 {
		add("max_subjects must be at least 1")
	}
	if c.MaxConns < 2 {
		add("max_conns must be at least 2")
	}
	if zone, err := time.LoadLocation(c.TimeZone); err != nil {
		add("time_zone %q is not an IANA time zone such as Europe/Berlin", c.TimeZone)
	} else {
		c.zone = zone
	}
	if c.Subject.Table == "" {
		add("subject.table is required")
	}
	if c.Subject.Key == "" {
		c.Subject.Key = "id"
	}
	if c.Subject.Email == "" && c.Subject.Phone == "" && c.Subject.CustomerID == "" {
		add("subject needs at least one of email, phone and customer_id columns")
	}

	names := map[string]*TableConfig{}
	for i := range c.Tables {
		t := &c.Tables[i]
		where := fmt.Sprintf("tables[%d] (%s)", i, t.Name)
		if t.Name == "" {
			add("tables[%d]: name is required", i)
			continue
		}
		if names[t.Name] != nil {
			add("%s: table listed twice", where)
		}
		names[t.Name] = t
		if t.Key == "" {
			t.Key = "id"
		}
		switch t.OnErase {
		case "":
			t.OnErase = OnEraseAnonymise
		case OnEraseAnonymise, OnEraseDelete:
		default:
			add("%s: on_erase %q: want anonymise or delete", where, t.OnErase)
		}
		if t.Keep && t.OnErase == OnEraseDelete {
			add("%s: a kept table cannot be deleted on erase", where)
		}
		cols := map[string]bool{}
		for j := range t.Columns {
			col := &t.Columns[j]
			cw := fmt.Sprintf("%s column %q", where, col.Name)
			if col.Name == "" {
				add("%s columns[%d]: name is required", where, j)
				continue
			}
			if cols[col.Name] {
				add("%s: listed twice", cw)
			}
			cols[col.Name] = true
			if !col.Category.Valid() {
				add("%s: unknown category %q (want contact, identity, financial, health or marketing)", cw, col.Category)
			}
			switch col.Erase {
			case "":
				personal := col.Category != connectors.CategoryNone && col.Category != connectors.CategoryFinancial
				if personal && t.OnErase != OnEraseDelete {
					add("%s: %s data needs an erase strategy (null, replace, hash or redact)", cw, col.Category)
				}
			case StrategyNull, StrategyHash:
			case StrategyReplace:
				if col.Value == nil {
					add("%s: replace needs a value", cw)
				}
			case StrategyRedact:
				re, err := regexp.Compile(col.Pattern)
				if err != nil || col.Pattern == "" {
					add("%s: redact needs a valid pattern", cw)
				}
				col.re = re
			default:
				add("%s: unknown erase strategy %q (want null, replace, hash or redact)", cw, col.Erase)
			}
			if col.Erase != "" && t.OnErase == OnEraseDelete {
				add("%s: rows are deleted, a column strategy would never apply", cw)
			}
			if t.Keep && col.Category == connectors.CategoryFinancial && col.Erase != "" {
				add("%s: financial columns of a kept table must stay intact", cw)
			}
		}
	}
	root := names[c.Subject.Table]
	if c.Subject.Table != "" && root == nil {
		add("subject.table %q must also be listed in tables", c.Subject.Table)
	}
	if root != nil {
		if root.Join != nil {
			add("subject table %q cannot have a join", root.Name)
		}
		if root.OnErase == OnEraseDelete {
			add("subject table %q cannot be deleted on erase: its key identifies the subject's other rows", root.Name)
		}
		if root.Key != c.Subject.Key {
			root.Key = c.Subject.Key
		}
	}
	for i := range c.Tables {
		t := &c.Tables[i]
		if t == root || t.Name == "" {
			continue
		}
		if t.Join == nil || t.Join.Column == "" {
			add("tables[%d] (%s): join.column is required to find the subject's rows", i, t.Name)
			continue
		}
		if t.Join.Table == "" {
			t.Join.Table = c.Subject.Table
		}
		if names[t.Join.Table] == nil {
			add("tables[%d] (%s): join.table %q is not a configured table", i, t.Name, t.Join.Table)
		}
	}
	if errs.ErrorOrNil() == nil {
		if err := c.checkJoinCycles(names); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if c.HashKeyEnv == "" && c.HashKeyFile == "" && c.uses(StrategyHash) {
		add("hash_key_env or hash_key_file is required: a column uses the hash strategy")
	}

	codes := map[string]bool{}
	for i, b := range c.Blocks {
		if !codePattern.MatchString(b.Code) {
			add("blocks[%d]: code %q must be lower_snake_case", i, b.Code)
		}
		if codes[b.Code] {
			add("blocks[%d]: code %q listed twice", i, b.Code)
		}
		codes[b.Code] = true
		if strings.TrimSpace(b.Reason) == "" || strings.TrimSpace(b.Query) == "" {
			add("blocks[%d] (%s): reason and query are required", i, b.Code)
		}
	}
	purposes := map[string]bool{}
	for i, o := range c.Objections {
		if !codePattern.MatchString(o.Purpose) {
			add("objections[%d]: purpose %q must be lower_snake_case", i, o.Purpose)
		}
		if purposes[o.Purpose] {
			add("objections[%d]: purpose %q listed twice", i, o.Purpose)
		}
		purposes[o.Purpose] = true
		if strings.TrimSpace(o.Statement) == "" {
			add("objections[%d] (%s): statement is required", i, o.Purpose)
		}
	}
	finders := map[string]bool{}
	for i, f := range c.Finders {
		if f.Name == "" || strings.TrimSpace(f.Query) == "" {
			add("finders[%d]: name and query are required", i)
		}
		if finders[f.Name] {
			add("finders[%d]: name %q listed twice", i, f.Name)
		}
		finders[f.Name] = true
		for _, p := range f.Params {
			if p == paramFinder {
				add("finders[%d] (%s): param name %q is reserved", i, f.Name, p)
			}
		}
	}
	rules := map[string]bool{}
	for i := range c.Retention {
		r := &c.Retention[i]
		if r.Name == "" || r.Table == "" || r.Timestamp == "" {
			add("retention[%d]: name, table and timestamp are required", i)
		}
		if rules[r.Name] {
			add("retention[%d]: name %q listed twice", i, r.Name)
		}
		rules[r.Name] = true
		if r.OlderThan <= 0 {
			add("retention[%d] (%s): older_than must be positive", i, r.Name)
		}
		if r.Key == "" {
			r.Key = "id"
		}
		if r.BatchSize == 0 {
			r.BatchSize = 1000
		}
		if r.BatchSize < 0 {
			add("retention[%d] (%s): batch_size must be positive", i, r.Name)
		}
		if err := c.validateAction(r, names[r.Table]); err != nil {
			add("retention[%d] (%s): %v", i, r.Name, err)
		}
	}
	return errs.ErrorOrNil()
}

func (c *Config) uses(strategy string) bool {
	for _, t := range c.Tables {
		for _, col := range t.Columns {
			if col.Erase == strategy {
				return true
			}
		}
	}
	return false
}

func (c *Config) checkJoinCycles(names map[string]*TableConfig) error {
	for i := range c.Tables {
		cur, seen := &c.Tables[i], map[string]bool{}
		for cur.Join != nil {
			if seen[cur.Name] {
				return fmt.Errorf("table %q: joins form a cycle and never reach the subject table", c.Tables[i].Name)
			}
			seen[cur.Name] = true
			if cur = names[cur.Join.Table]; cur == nil {
				return errors.New("join to an unknown table")
			}
		}
	}
	return nil
}

// validateAction checks what rule r does to table t (nil: not a configured table).
func (c *Config) validateAction(r *RetentionRule, t *TableConfig) error {
	switch r.Action {
	case "":
		r.Action = ActionDelete
		return nil
	case ActionDelete:
		return nil
	case ActionAnonymise, ActionErase:
	default:
		return fmt.Errorf("action %q: want delete, anonymise or erase", r.Action)
	}
	if t == nil {
		return fmt.Errorf("%s needs table %q listed in tables, with its erase strategies", r.Action, r.Table)
	}
	if r.Action == ActionErase && r.Table != c.Subject.Table {
		return fmt.Errorf("erase works on the subject table %q, not %q", c.Subject.Table, r.Table)
	}
	if r.Key != t.Key {
		return fmt.Errorf("key %q must be the table's key %q", r.Key, t.Key)
	}
	// A purged row must look purged, so that a second run leaves it alone.
	marks := 0
	for _, col := range t.Columns {
		switch col.Erase {
		case StrategyNull, StrategyReplace:
			marks++
		case StrategyHash, StrategyRedact:
			if r.Action == ActionAnonymise {
				return fmt.Errorf("anonymise applies only null and replace strategies; column %q uses %s", col.Name, col.Erase)
			}
		}
	}
	if marks == 0 {
		return fmt.Errorf("%s needs a column of %q with a null or replace strategy, to tell purged rows apart", r.Action, r.Table)
	}
	return nil
}
