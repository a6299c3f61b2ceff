package database

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lethe-privacy/lethe/connectors"
)

// Retention actions: what a rule does to the rows past their period.
const (
	ActionDelete    = "delete"    // delete the rows (default)
	ActionAnonymise = "anonymise" // apply the table's null and replace strategies, keep the rows
	ActionErase     = "erase"     // erase each subject of the subject table as an erasure does
)

// purgeQuery is a rule's SQL and its parameters: $1 the period in seconds, $2 the batch size,
// then the rule's replacement values, then (erase) the key after which the walk goes on.
type purgeQuery struct {
	rule *RetentionRule
	// eligible selects the keys of the rows the rule acts on, locked for the batch.
	eligible string
	// apply deletes or anonymises the eligible rows (empty for erase, done per subject).
	apply  string
	values []any
}

// purgeQuery builds rule r's statements. A row is eligible when its timestamp is past the
// period, the rule's where holds and, for anonymise and erase, it still holds what they
// remove: so a second run finds nothing the first one did.
func (c *Connector) purgeQuery(s *schemaInfo, r *RetentionRule) purgeQuery {
	q := purgeQuery{rule: r}
	cond := fmt.Sprintf("%s < now() - make_interval(secs => $1)", ident(r.Timestamp))
	if strings.TrimSpace(r.Where) != "" {
		cond += " AND (" + r.Where + ")"
	}
	var sets, holds []string
	if r.Action != ActionDelete {
		for _, col := range c.tables[r.Table].Columns {
			switch col.Erase {
			case StrategyNull:
				sets = append(sets, ident(col.Name)+" = NULL")
				holds = append(holds, ident(col.Name)+" IS NOT NULL")
			case StrategyReplace:
				q.values = append(q.values, *col.Value)
				n := len(q.values) + 2
				sets = append(sets, fmt.Sprintf("%s = $%d", ident(col.Name), n))
				holds = append(holds, fmt.Sprintf("%s IS DISTINCT FROM $%d", ident(col.Name), n))
			}
		}
		cond += " AND (" + strings.Join(holds, " OR ") + ")"
	}
	if r.Action == ActionErase {
		// Erased subjects drop out; blocked ones stay, so the walk goes on by key.
		n := len(q.values) + 3
		cond += fmt.Sprintf(" AND ($%[2]d::text IS NULL OR %[1]s > $%[2]d::text::%[3]s)", ident(r.Key), n, s.keyType[r.Table])
	}
	table := c.ref(r.Table)
	q.eligible = fmt.Sprintf("SELECT %[2]s::text FROM %[1]s WHERE %[3]s ORDER BY %[2]s LIMIT $2", table, ident(r.Key), cond)
	locked := q.eligible + " FOR UPDATE SKIP LOCKED"
	switch r.Action {
	case ActionDelete:
		q.apply = fmt.Sprintf("DELETE FROM %s WHERE %s::text IN (%s)", table, ident(r.Key), locked)
	case ActionAnonymise:
		q.apply = fmt.Sprintf("UPDATE %s SET %s WHERE %s::text IN (%s)", table, strings.Join(sets, ", "), ident(r.Key), locked)
	case ActionErase:
		q.eligible = locked
	}
	return q
}

// args are the statement's parameters for a period and batch size.
func (q purgeQuery) args(period time.Duration, limit int64, after string) []any {
	args := append([]any{period.Seconds(), limit}, q.values...)
	if q.rule.Action == ActionErase {
		var a *string
		if after != "" {
			a = &after
		}
		args = append(args, a)
	}
	return args
}

// purgeParams are a purge task's params.
type purgeParams struct {
	only       string
	maxBatches int
	olderThan  time.Duration // 0: each rule's own
	// rules, when set, are the rules to run in this order, each with the tenant's period.
	rules  []ruleParam
	dryRun bool
	after  string // erase: the cursor of the previous command
}

// ruleParam is one entry of params "rules".
type ruleParam struct {
	name   string
	period time.Duration
}

// seconds reads a number of seconds (JSON numbers arrive as float64).
func seconds(name string, v any) (float64, error) {
	switch n := v.(type) {
	case nil:
		return 0, nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case float64:
		return n, nil
	}
	return 0, connectors.Permanent(fmt.Errorf("param %q must be a number", name))
}

func readPurgeParams(task connectors.Task) (purgeParams, error) {
	var p purgeParams
	if err := connectors.CheckParams(task, paramRule, paramMaxBatches, paramOlderThan, paramRules, paramDryRun, paramAfter); err != nil {
		return p, err
	}
	p.only, _ = task.Params[paramRule].(string)
	p.after, _ = task.Params[paramAfter].(string)
	if p.after != "" && p.only == "" {
		return p, connectors.Permanent(fmt.Errorf("param %q continues one rule: name it with param %q", paramAfter, paramRule))
	}
	n, err := seconds(paramMaxBatches, task.Params[paramMaxBatches])
	if err != nil {
		return p, err
	}
	p.maxBatches = int(n)
	if n, err = seconds(paramOlderThan, task.Params[paramOlderThan]); err != nil {
		return p, err
	}
	if n < 0 || (n > 0 && p.only == "") {
		return p, connectors.Permanent(fmt.Errorf("param %q must be a positive number of seconds, with param %q naming the rule", paramOlderThan, paramRule))
	}
	p.olderThan = time.Duration(n * float64(time.Second))
	if v, ok := task.Params[paramRules]; ok {
		list, isList := v.([]any)
		if !isList || len(list) == 0 || p.only != "" {
			return p, connectors.Permanent(fmt.Errorf(`param %q must list {"rule": NAME, "older_than": SECONDS}, without param %q`, paramRules, paramRule))
		}
		for _, item := range list {
			m, _ := item.(map[string]any)
			name, _ := m[paramRule].(string)
			n, err := seconds(paramRules, m[paramOlderThan])
			if err != nil || name == "" || n <= 0 || len(m) != 2 {
				return p, connectors.Permanent(fmt.Errorf(`param %q: each entry is {"rule": NAME, "older_than": SECONDS}`, paramRules))
			}
			p.rules = append(p.rules, ruleParam{name: name, period: time.Duration(n * float64(time.Second))})
		}
	}
	if v, ok := task.Params[paramDryRun]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return p, connectors.Permanent(fmt.Errorf("param %q must be a boolean", paramDryRun))
		}
		p.dryRun = b
	}
	return p, nil
}

// Purge acts on rows past their retention period, for every rule, only params "rule", or the
// rules params "rules" lists in its order, committing each batch on its own. Params
// "older_than" (with "rule") or each entry of "rules" give the tenant's period instead of the
// rule's own. A dry run purges in
// one transaction and rolls it back: its counts are the run's, rules that overlap included
// (a customer erased by one rule no longer counts for the next), blocking rules applied. A task
// that names a subject purges that subject (their expiry date passed), erased as an erasure
// would, once per task key.
func (c *Connector) Purge(ctx context.Context, task connectors.Task) (connectors.PurgeResult, error) {
	res := connectors.PurgeResult{Rows: map[string]int64{}}
	p, err := readPurgeParams(task)
	if err != nil {
		return res, err
	}
	if !task.Subject.IsZero() {
		return c.purgeSubject(ctx, task, p)
	}
	s, err := c.ready(ctx)
	if err != nil {
		return res, err
	}
	runs, err := c.chosenRules(s, p, &res)
	if err != nil {
		return res, err
	}
	if !p.dryRun {
		for _, run := range runs {
			run.db = c.pool
			if err := run.purge(ctx, p.maxBatches, p.after); err != nil {
				return res, err
			}
		}
		return res, nil
	}
	res.DryRun = true
	err = c.rolledBack(ctx, func(tx pgx.Tx) error {
		for _, run := range runs {
			run.db = tx
			if err := run.purge(ctx, 0, p.after); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// chosenRules are the rules a purge runs, in order: params "rules", or "rule", or all.
func (c *Connector) chosenRules(s *schemaInfo, p purgeParams, res *connectors.PurgeResult) ([]ruleRun, error) {
	byName := map[string]*RetentionRule{}
	for i := range c.cfg.Retention {
		byName[c.cfg.Retention[i].Name] = &c.cfg.Retention[i]
	}
	want := p.rules
	switch {
	case p.only != "":
		want = []ruleParam{{name: p.only, period: p.olderThan}}
	case want == nil:
		for _, r := range c.cfg.Retention {
			want = append(want, ruleParam{name: r.Name})
		}
	}
	var runs []ruleRun
	for _, w := range want {
		r := byName[w.name]
		if r == nil {
			return nil, connectors.Permanent(fmt.Errorf("param %q must name a configured retention rule, not %q", paramRule, w.name))
		}
		period := time.Duration(r.OlderThan)
		if w.period > 0 {
			period = w.period
		}
		runs = append(runs, ruleRun{c: c, s: s, q: c.purgeQuery(s, r), period: period, res: res})
	}
	return runs, nil
}

// rolledBack runs fn in a transaction that is always rolled back.
func (c *Connector) rolledBack(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return classify("a dry run", ctxErr(ctx, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	return fn(tx)
}

// purgeDB is where a rule's batches run: the pool (each batch commits) or a dry run's
// transaction (each batch a savepoint).
type purgeDB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// ruleRun is one rule's part of a purge.
type ruleRun struct {
	c      *Connector
	s      *schemaInfo
	q      purgeQuery
	period time.Duration
	res    *connectors.PurgeResult
	db     purgeDB
}

func (r ruleRun) doing() string { return "purging " + r.q.rule.Name }

// purge runs batches until fewer rows than a batch are left, or maxBatches (0: no bound) ran.
// An erase rule walks the subjects by key from after, and leaves the cursor where it stopped.
func (r ruleRun) purge(ctx context.Context, maxBatches int, after string) error {
	rule := r.q.rule
	for batch := 0; ; batch++ {
		if maxBatches > 0 && batch == maxBatches {
			r.res.More, r.res.Cursor = true, after
			return nil
		}
		var looked, done int64
		var err error
		if rule.Action == ActionErase {
			looked, done, after, err = r.eraseBatch(ctx, after)
		} else {
			tag, execErr := r.db.Exec(ctx, r.q.apply, r.q.args(r.period, int64(rule.BatchSize), "")...)
			looked, done, err = tag.RowsAffected(), tag.RowsAffected(), execErr
		}
		if err != nil {
			return classify(r.doing(), ctxErr(ctx, err))
		}
		r.res.Batches++
		r.res.Rows[rule.Name] += done
		if looked < int64(rule.BatchSize) {
			return nil
		}
	}
}

// eraseBatch erases one batch of subjects after the cursor in one transaction. A subject a
// blocking rule holds (a booking still to come, a balance) is left and counted. It returns how
// many subjects it looked at, how many it erased, and the last key it looked at.
func (r ruleRun) eraseBatch(ctx context.Context, after string) (looked, erased int64, _ string, _ error) {
	err := pgx.BeginFunc(ctx, r.db, func(tx pgx.Tx) error {
		keys, free, blocked, err := r.batch(ctx, tx, after)
		if err != nil || len(keys) == 0 {
			return err
		}
		looked, erased, after = int64(len(keys)), int64(len(free)), keys[len(keys)-1]
		r.addBlocked(int64(len(blocked)))
		if len(free) == 0 {
			return nil
		}
		var er connectors.EraseResult
		return r.c.erase(ctx, tx, r.s, free, &er)
	})
	return looked, erased, after, err
}

// batch reads one batch of eligible subjects after the cursor and splits off those a blocking
// rule holds.
func (r ruleRun) batch(ctx context.Context, tx pgx.Tx, after string) (keys, free, blocked []string, err error) {
	rows, err := tx.Query(ctx, r.q.eligible, r.q.args(r.period, int64(r.q.rule.BatchSize), after)...)
	if err != nil {
		return nil, nil, nil, err
	}
	if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, nil, nil, err
	}
	free, blocked, err = r.unblocked(ctx, tx, keys)
	return keys, free, blocked, err
}

func (r ruleRun) addBlocked(n int64) {
	if n == 0 {
		return
	}
	if r.res.Blocked == nil {
		r.res.Blocked = map[string]int64{}
	}
	r.res.Blocked[r.q.rule.Name] += n
}

// unblocked splits keys into those no blocking rule holds and those it does.
func (r ruleRun) unblocked(ctx context.Context, tx pgx.Tx, keys []string) (free, blocked []string, err error) {
	for _, key := range keys {
		bs, err := r.c.blocks(ctx, tx, []string{key})
		if err != nil {
			return nil, nil, err
		}
		if len(bs) > 0 {
			blocked = append(blocked, key)
		} else {
			free = append(free, key)
		}
	}
	return free, blocked, nil
}

// purgeSubject erases the task's subject, recorded in the ledger under the task key like
// every change to a subject. A blocking rule refuses it as it refuses an erasure.
func (c *Connector) purgeSubject(ctx context.Context, task connectors.Task, p purgeParams) (connectors.PurgeResult, error) {
	res := connectors.PurgeResult{Rows: map[string]int64{}, DryRun: p.dryRun}
	if p.only != "" || p.maxBatches != 0 || p.olderThan != 0 || p.after != "" || p.rules != nil {
		return res, connectors.Permanent(errors.New("a purge of one subject takes no rule, rules, max_batches, older_than or after"))
	}
	s, err := c.ready(ctx)
	if err != nil {
		return res, err
	}
	erase := func(tx pgx.Tx, keys []string) error {
		res.Subjects = len(keys)
		var er connectors.EraseResult
		if err := c.eraseUnblocked(ctx, tx, s, keys, &er); err != nil {
			return err
		}
		for table, n := range er.Anonymised {
			res.Rows[table] += n
		}
		for table, n := range er.Deleted {
			res.Rows[table] += n
		}
		return nil
	}
	if p.dryRun {
		err = c.rolledBack(ctx, func(tx pgx.Tx) error {
			keys, err := c.subjects(ctx, tx, task.Subject, true)
			if err != nil {
				return err
			}
			return erase(tx, keys)
		})
		return res, err
	}
	return res, c.inLedger(ctx, task, connectors.CapPurge, &res, erase)
}
