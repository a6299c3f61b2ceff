package database

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/lethe-privacy/lethe/connectors"
)

// Task params understood by the database connector.
const (
	paramLift       = "lift"        // restrict: true lifts the restriction
	paramPurpose    = "purpose"     // restrict: object to one purpose only (objections)
	paramFinder     = "finder"      // find: name of the configured finder
	paramRule       = "rule"        // purge: only this retention rule
	paramMaxBatches = "max_batches" // purge: stop after this many batches per rule
	paramOlderThan  = "older_than"  // purge: the tenant's period in seconds, instead of the rule's
	paramRules      = "rules"       // purge: the rules to run in order, each {rule, older_than}
	paramDryRun     = "dry_run"     // purge: count what would go, change nothing
	paramAfter      = "after"       // purge: an erase rule's cursor from the previous command
)

// Rectify sets the columns named in params "changes" on the subject's rows. Only columns
// marked rectify in the configuration can be changed; a column may be named "column" when
// unambiguous, or "table.column".
func (c *Connector) Rectify(ctx context.Context, task connectors.Task) (connectors.RectifyResult, error) {
	var res connectors.RectifyResult
	changes, err := connectors.Changes(task)
	if err != nil {
		return res, err
	}
	type change struct {
		t     *TableConfig
		col   string
		value any
	}
	var todo []change
	names := make([]string, 0, len(changes))
	for name := range changes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t, col, err := c.rectifiable(name)
		if err != nil {
			return res, err
		}
		todo = append(todo, change{t: t, col: col, value: changes[name]})
	}
	s, err := c.ready(ctx)
	if err != nil {
		return res, err
	}
	err = c.inLedger(ctx, task, connectors.CapRectify, &res, func(tx pgx.Tx, keys []string) error {
		if len(keys) == 0 {
			return nil
		}
		res.Updated = map[string]int64{}
		for _, ch := range todo {
			q := fmt.Sprintf("UPDATE %s AS t0 SET %s = $2 WHERE %s", c.ref(ch.t.Name), ident(ch.col), c.predicate(s, ch.t, "t0", 0))
			tag, err := tx.Exec(ctx, q, keys, ch.value)
			if err != nil {
				return classify("rectifying "+ch.t.Name+"."+ch.col, err)
			}
			res.Updated[ch.t.Name+"."+ch.col] = tag.RowsAffected()
		}
		return nil
	})
	return res, err
}

func (c *Connector) rectifiable(name string) (*TableConfig, string, error) {
	table, col, qualified := strings.Cut(name, ".")
	if !qualified {
		col, table = table, ""
	}
	var found *TableConfig
	for i := range c.cfg.Tables {
		t := &c.cfg.Tables[i]
		if table != "" && t.Name != table {
			continue
		}
		for _, cc := range t.Columns {
			if cc.Name == col && cc.Rectify {
				if found != nil {
					return nil, "", connectors.Permanent(fmt.Errorf("field %q is ambiguous: name it as table.column", name))
				}
				found = t
			}
		}
	}
	if found == nil {
		return nil, "", connectors.Permanent(fmt.Errorf("field %q cannot be rectified", name))
	}
	return found, col, nil
}

// Restrict sets the subject table's restrict column to the current time, or to NULL when
// params "lift" is true.
func (c *Connector) Restrict(ctx context.Context, task connectors.Task) (connectors.RestrictResult, error) {
	var res connectors.RestrictResult
	if err := connectors.CheckParams(task, paramLift, paramPurpose); err != nil {
		return res, err
	}
	if _, ok := task.Params[paramPurpose]; ok {
		return c.object(ctx, task)
	}
	col := c.cfg.Subject.RestrictColumn
	if col == "" {
		return res, connectors.Permanent(errors.New("restriction is not configured: set subject.restrict_column"))
	}
	lift := false
	if v, ok := task.Params[paramLift]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return res, connectors.Permanent(errors.New(`param "lift" must be a boolean`))
		}
		lift = b
	}
	s, err := c.ready(ctx)
	if err != nil {
		return res, err
	}
	err = c.inLedger(ctx, task, connectors.CapRestrict, &res, func(tx pgx.Tx, keys []string) error {
		if len(keys) == 0 {
			return nil
		}
		value := "now()"
		if lift {
			value = "NULL"
		}
		q := fmt.Sprintf("UPDATE %s AS t0 SET %s = %s WHERE %s", c.ref(c.root.Name), ident(col), value, c.predicate(s, c.root, "t0", 0))
		tag, err := tx.Exec(ctx, q, keys)
		if err != nil {
			return classify("restricting", err)
		}
		res.Rows, res.Restricted = tag.RowsAffected(), !lift
		return nil
	})
	return res, err
}

// object runs the configured objection statement for the purpose in params "purpose", in the
// task's ledgered transaction: processing for that purpose stops, the rest is untouched.
func (c *Connector) object(ctx context.Context, task connectors.Task) (connectors.RestrictResult, error) {
	var res connectors.RestrictResult
	purpose, _ := task.Params[paramPurpose].(string)
	var rule *ObjectionRule
	for i := range c.cfg.Objections {
		if c.cfg.Objections[i].Purpose == purpose {
			rule = &c.cfg.Objections[i]
		}
	}
	if rule == nil {
		// Nothing here is processed for that purpose: there is nothing to stop.
		res.Restricted = true
		return res, nil
	}
	if _, err := c.ready(ctx); err != nil {
		return res, err
	}
	err := c.inLedger(ctx, task, connectors.CapRestrict, &res, func(tx pgx.Tx, keys []string) error {
		for _, key := range keys {
			tag, err := tx.Exec(ctx, rule.Statement, key)
			if err != nil {
				return classify("objecting to "+purpose, err)
			}
			res.Rows += tag.RowsAffected()
		}
		res.Restricted = true
		return nil
	})
	return res, err
}

// Find runs the finder named by params "finder", passing its declared params in order, and
// streams each subject found to the sink.
func (c *Connector) Find(ctx context.Context, task connectors.Task, sink connectors.SubjectSink) (connectors.FindResult, error) {
	var res connectors.FindResult
	name, _ := task.Params[paramFinder].(string)
	var f *FinderConfig
	for i := range c.cfg.Finders {
		if c.cfg.Finders[i].Name == name {
			f = &c.cfg.Finders[i]
		}
	}
	if f == nil {
		return res, connectors.Permanent(fmt.Errorf("param %q must name a configured finder", paramFinder))
	}
	if err := connectors.CheckParams(task, append([]string{paramFinder}, f.Params...)...); err != nil {
		return res, err
	}
	args := make([]any, len(f.Params))
	for i, p := range f.Params {
		v, ok := task.Params[p]
		if !ok {
			return res, connectors.Permanent(fmt.Errorf("finder %s needs param %q", f.Name, p))
		}
		args[i] = v
	}
	if _, err := c.ready(ctx); err != nil {
		return res, err
	}
	doing := "finding subjects with " + f.Name
	rows, err := c.pool.Query(ctx, f.Query, args...)
	if err != nil {
		return res, classify(doing, ctxErr(ctx, err))
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return res, classify(doing, err)
		}
		var subj connectors.Subject
		for i, fd := range fields {
			v := format(vals[i], c.cfg.location())
			switch fd.Name {
			case "email":
				subj.Email = v
			case "phone":
				subj.Phone = v
			case "customer_id":
				subj.CustomerID = v
			}
		}
		if subj.IsZero() {
			continue
		}
		if err := sink.WriteSubject(ctx, subj); err != nil {
			return res, fmt.Errorf("%s: sink: %w", doing, err)
		}
		res.Subjects++
	}
	if err := rows.Err(); err != nil {
		return res, classify(doing, ctxErr(ctx, err))
	}
	return res, nil
}
