package database

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/lethe-privacy/lethe/connectors"
)

// Erase erases the subject in one transaction: record the task key in the ledger, lock the
// subject's record, refuse if a blocking rule matches, apply each table's strategy (children
// first), verify that nothing erasable remains, and store the result with the key. A retry
// with the same key returns the stored result without touching data, even if the first
// attempt's result was never delivered.
func (c *Connector) Erase(ctx context.Context, task connectors.Task) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	if err := connectors.CheckParams(task); err != nil {
		return res, err
	}
	s, err := c.ready(ctx)
	if err != nil {
		return res, err
	}
	err = c.inLedger(ctx, task, connectors.CapErase, &res, func(tx pgx.Tx, keys []string) error {
		res.Subjects = len(keys)
		return c.eraseUnblocked(ctx, tx, s, keys, &res)
	})
	return res, err
}

// eraseUnblocked erases the subjects of keys unless a blocking rule holds one of them.
func (c *Connector) eraseUnblocked(ctx context.Context, tx pgx.Tx, s *schemaInfo, keys []string, res *connectors.EraseResult) error {
	if len(keys) == 0 {
		return nil
	}
	blocks, err := c.blocks(ctx, tx, keys)
	if err != nil {
		return err
	}
	if len(blocks) > 0 {
		return connectors.Blocked(blocks)
	}
	return c.erase(ctx, tx, s, keys, res)
}

func (c *Connector) erase(ctx context.Context, tx pgx.Tx, s *schemaInfo, keys []string, res *connectors.EraseResult) error {
	order := make([]*TableConfig, 0, len(c.cfg.Tables))
	for i := range c.cfg.Tables {
		order = append(order, &c.cfg.Tables[i])
	}
	// Children before parents, so deletes never trip a foreign key.
	sort.SliceStable(order, func(i, j int) bool { return c.depth(order[i]) > c.depth(order[j]) })

	// Every statement goes out in one pipelined batch, the verification last; only columns
	// transformed in Go (hash, redact) need their values read first.
	type queued struct {
		table      *TableConfig
		statements int
	}
	var b pgx.Batch
	var plan []queued
	for _, t := range order {
		if t.Keep {
			res.Kept = append(res.Kept, t.Name)
		}
		n, err := c.queueTable(ctx, tx, &b, s, t, keys)
		if err != nil {
			return err
		}
		if n > 0 {
			plan = append(plan, queued{t, n})
		}
	}
	verifySQL, verifyArgs := c.verifyQuery(s, keys)
	if verifySQL != "" {
		b.Queue(verifySQL, verifyArgs...)
	}
	br := tx.SendBatch(ctx, &b)
	defer func() { _ = br.Close() }()
	for _, q := range plan {
		var rows int64
		for range q.statements {
			tag, err := br.Exec()
			if err != nil {
				return classify("erasing "+q.table.Name, err)
			}
			rows += tag.RowsAffected()
		}
		if rows == 0 {
			continue
		}
		m := &res.Anonymised
		if q.table.OnErase == OnEraseDelete {
			m = &res.Deleted
		}
		if *m == nil {
			*m = map[string]int64{}
		}
		(*m)[q.table.Name] = rows
	}
	sort.Strings(res.Kept)
	if verifySQL == "" {
		return br.Close()
	}
	var left int64
	if err := br.QueryRow().Scan(&left); err != nil {
		return classify("verifying the erasure", err)
	}
	if left > 0 {
		// A row written concurrently for this subject; the retry erases it too.
		return fmt.Errorf("verifying the erasure: %d rows still hold erased data", left)
	}
	return br.Close()
}

// queueTable queues the statements erasing table t and returns how many it queued.
func (c *Connector) queueTable(ctx context.Context, tx pgx.Tx, b *pgx.Batch, s *schemaInfo, t *TableConfig, keys []string) (int, error) {
	pred := c.predicate(s, t, "t0", 0)
	if t.OnErase == OnEraseDelete {
		b.Queue(fmt.Sprintf("DELETE FROM %s AS t0 WHERE %s", c.ref(t.Name), pred), keys)
		return 1, nil
	}

	// sets numbers replacement values from $2 ($1 is the subject keys); inGo columns are
	// computed from each row's current value.
	var sets []string
	var fixed []any
	var inGo []*ColumnConfig
	for i := range t.Columns {
		col := &t.Columns[i]
		switch col.Erase {
		case StrategyNull:
			sets = append(sets, ident(col.Name)+" = NULL")
		case StrategyReplace:
			fixed = append(fixed, *col.Value)
			sets = append(sets, fmt.Sprintf("%s = $%d", ident(col.Name), len(fixed)+1))
		case StrategyHash, StrategyRedact:
			inGo = append(inGo, col)
		}
	}
	if len(sets) == 0 && len(inGo) == 0 {
		return 0, nil
	}
	if len(inGo) == 0 {
		b.Queue(fmt.Sprintf("UPDATE %s AS t0 SET %s WHERE %s", c.ref(t.Name), strings.Join(sets, ", "), pred), append([]any{keys}, fixed...)...)
		return 1, nil
	}

	sel := make([]string, len(inGo))
	for i, col := range inGo {
		sel[i] = "t0." + ident(col.Name) + "::text"
	}
	q := fmt.Sprintf("SELECT t0.%s::text, %s FROM %s AS t0 WHERE %s FOR UPDATE",
		ident(t.Key), strings.Join(sel, ", "), c.ref(t.Name), pred)
	rows, err := tx.Query(ctx, q, keys)
	if err != nil {
		return 0, classify("erasing "+t.Name, err)
	}
	type row struct {
		key  string
		vals []*string
	}
	var found []row
	for rows.Next() {
		r := row{vals: make([]*string, len(inGo))}
		dest := []any{&r.key}
		for i := range r.vals {
			dest = append(dest, &r.vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return 0, classify("erasing "+t.Name, err)
		}
		found = append(found, r)
	}
	if err := rows.Err(); err != nil {
		return 0, classify("erasing "+t.Name, err)
	}
	// Per row: $1 the key, then the replacements, then the transformed values.
	for i, col := range inGo {
		sets = append(sets, fmt.Sprintf("%s = $%d", ident(col.Name), len(fixed)+2+i))
	}
	upd := fmt.Sprintf("UPDATE %s SET %s WHERE %s = $1::text::%s",
		c.ref(t.Name), strings.Join(sets, ", "), ident(t.Key), s.keyType[t.Name])
	for _, r := range found {
		a := append([]any{r.key}, fixed...)
		for i, col := range inGo {
			a = append(a, c.transform(col, r.vals[i]))
		}
		b.Queue(upd, a...)
	}
	return len(found), nil
}

// transform applies a hash or redact strategy; NULL stays NULL.
func (c *Connector) transform(col *ColumnConfig, v *string) any {
	if v == nil {
		return nil
	}
	switch col.Erase {
	case StrategyHash:
		return c.hash(*v)
	case StrategyRedact:
		return col.re.ReplaceAllString(*v, col.Replacement)
	}
	return nil
}

// hash is the keyed hash of a normalised value (trimmed, lower case), hex encoded, so a later
// import of the same address can be matched without Lethe holding the address.
func (c *Connector) hash(v string) string {
	m := hmac.New(sha256.New, c.hashKey)
	m.Write([]byte(strings.ToLower(strings.TrimSpace(v))))
	return hex.EncodeToString(m.Sum(nil))
}

// Hash exposes the keyed hash, so an integrator can match a new sign-up against erased
// records.
func (c *Connector) Hash(v string) string { return c.hash(v) }

// verifyQuery counts rows that still hold what the erasure removed: deleted rows, and
// columns that should now be NULL or the replacement value.
func (c *Connector) verifyQuery(s *schemaInfo, keys []string) (string, []any) {
	args := []any{keys}
	var parts []string
	for i := range c.cfg.Tables {
		t := &c.cfg.Tables[i]
		pred := c.predicate(s, t, "t0", 0)
		var conds []string
		if t.OnErase == OnEraseDelete {
			conds = append(conds, "true")
		}
		for _, col := range t.Columns {
			switch col.Erase {
			case StrategyNull:
				conds = append(conds, "t0."+ident(col.Name)+" IS NOT NULL")
			case StrategyReplace:
				args = append(args, *col.Value)
				conds = append(conds, fmt.Sprintf("t0.%s IS DISTINCT FROM $%d", ident(col.Name), len(args)))
			}
		}
		if len(conds) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("(SELECT count(*) FROM %s AS t0 WHERE %s AND (%s))",
			c.ref(t.Name), pred, strings.Join(conds, " OR ")))
	}
	if len(parts) == 0 {
		return "", nil
	}
	return "SELECT " + strings.Join(parts, " + "), args
}

// inLedger runs fn in one transaction together with the ledger entry for task.Key, passing
// the locked keys of the subject's records. If the key was applied before, fn does not run
// and out receives the stored result.
func (c *Connector) inLedger(ctx context.Context, task connectors.Task, action connectors.Capability, out any, fn func(tx pgx.Tx, keys []string) error) error {
	if strings.TrimSpace(task.Key) == "" {
		return connectors.Permanent(errors.New("task has no idempotency key"))
	}
	doing := string(action)
	subjectSQL, args, err := c.subjectQuery(task.Subject, true)
	if err != nil {
		return err
	}
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return classify(doing, ctxErr(ctx, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// Record the key and lock the subject in one round trip. A concurrent attempt with the
	// same key waits on the insert until the first commits or rolls back.
	n := len(args)
	q := fmt.Sprintf(`WITH ledger AS (
		INSERT INTO %s (task_key, action, request_id, tenant_id) VALUES ($%d, $%d, $%d, $%d)
		ON CONFLICT (task_key) DO NOTHING RETURNING 1),
	subject AS (%s)
	SELECT (SELECT count(*) FROM ledger), array(SELECT * FROM subject)`, c.ledger(), n+1, n+2, n+3, n+4, subjectSQL)
	args = append(args, task.Key, string(action), task.RequestID, task.TenantID)
	var inserted int
	var keys []string
	if err := tx.QueryRow(ctx, q, args...).Scan(&inserted, &keys); err != nil {
		return classify(doing+": recording the task", ctxErr(ctx, err))
	}
	if inserted == 0 {
		var prevAction string
		var stored []byte
		if err := tx.QueryRow(ctx, "SELECT action, result FROM "+c.ledger()+" WHERE task_key = $1", task.Key).Scan(&prevAction, &stored); err != nil {
			return classify(doing+": reading the ledger", ctxErr(ctx, err))
		}
		if prevAction != string(action) {
			return connectors.Permanent(fmt.Errorf("%s: task key was already used for %s", doing, prevAction))
		}
		if err := json.Unmarshal(stored, out); err != nil {
			return fmt.Errorf("%s: reading the stored result: %w", doing, err)
		}
		markApplied(out)
		return nil
	}
	if err := c.unambiguous(keys); err != nil {
		return err
	}
	if err := fn(tx, keys); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", doing, ctx.Err())
		}
		return err
	}
	stored, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("%s: encoding the result: %w", doing, err)
	}
	if _, err := tx.Exec(ctx, "UPDATE "+c.ledger()+" SET result = $2 WHERE task_key = $1", task.Key, stored); err != nil {
		return classify(doing+": recording the result", ctxErr(ctx, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(doing+": committing", ctxErr(ctx, err))
	}
	return nil
}

func markApplied(out any) {
	switch r := out.(type) {
	case *connectors.EraseResult:
		r.AlreadyApplied = true
	case *connectors.RectifyResult:
		r.AlreadyApplied = true
	case *connectors.RestrictResult:
		r.AlreadyApplied = true
	}
}

// ctxErr prefers the context's error, so callers can tell cancellation apart.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
