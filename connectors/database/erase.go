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
	if err := noParams(task); err != nil {
		return res, err
	}
	s, err := c.ready(ctx)
	if err != nil {
		return res, err
	}
	err = c.inLedger(ctx, task, connectors.CapErase, &res, func(tx pgx.Tx) error {
		keys, err := c.subjects(ctx, tx, task.Subject, true)
		if err != nil {
			return err
		}
		res.Subjects = len(keys)
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
		return c.erase(ctx, tx, s, keys, &res)
	})
	return res, err
}

func (c *Connector) erase(ctx context.Context, tx pgx.Tx, s *schemaInfo, keys []string, res *connectors.EraseResult) error {
	order := make([]*TableConfig, 0, len(c.cfg.Tables))
	for i := range c.cfg.Tables {
		order = append(order, &c.cfg.Tables[i])
	}
	// Children before parents, so deletes never trip a foreign key.
	sort.SliceStable(order, func(i, j int) bool { return c.depth(order[i]) > c.depth(order[j]) })

	for _, t := range order {
		if t.Keep {
			res.Kept = append(res.Kept, t.Name)
		}
		n, deleted, err := c.eraseTable(ctx, tx, s, t, keys)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if deleted {
			if res.Deleted == nil {
				res.Deleted = map[string]int64{}
			}
			res.Deleted[t.Name] = n
		} else {
			if res.Anonymised == nil {
				res.Anonymised = map[string]int64{}
			}
			res.Anonymised[t.Name] = n
		}
	}
	sort.Strings(res.Kept)
	return c.verify(ctx, tx, s, keys)
}

func (c *Connector) eraseTable(ctx context.Context, tx pgx.Tx, s *schemaInfo, t *TableConfig, keys []string) (int64, bool, error) {
	pred := c.predicate(s, t, "t0", 0)
	if t.OnErase == OnEraseDelete {
		tag, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s AS t0 WHERE %s", c.ref(t.Name), pred), keys)
		if err != nil {
			return 0, true, classify("erasing "+t.Name, err)
		}
		return tag.RowsAffected(), true, nil
	}

	args := []any{keys}
	var sets []string
	var inGo []*ColumnConfig // strategies computed from the current value
	for i := range t.Columns {
		col := &t.Columns[i]
		switch col.Erase {
		case StrategyNull:
			sets = append(sets, ident(col.Name)+" = NULL")
		case StrategyReplace:
			args = append(args, *col.Value)
			sets = append(sets, fmt.Sprintf("%s = $%d", ident(col.Name), len(args)))
		case StrategyHash, StrategyRedact:
			inGo = append(inGo, col)
		}
	}
	if len(sets) == 0 && len(inGo) == 0 {
		return 0, false, nil
	}
	if len(inGo) == 0 {
		q := fmt.Sprintf("UPDATE %s AS t0 SET %s WHERE %s", c.ref(t.Name), strings.Join(sets, ", "), pred)
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return 0, false, classify("erasing "+t.Name, err)
		}
		return tag.RowsAffected(), false, nil
	}

	// Read the values to hash or redact, then write every row in one batch.
	sel := make([]string, len(inGo))
	for i, col := range inGo {
		sel[i] = "t0." + ident(col.Name) + "::text"
	}
	q := fmt.Sprintf("SELECT t0.%s::text, %s FROM %s AS t0 WHERE %s FOR UPDATE",
		ident(t.Key), strings.Join(sel, ", "), c.ref(t.Name), pred)
	rows, err := tx.Query(ctx, q, keys)
	if err != nil {
		return 0, false, classify("erasing "+t.Name, err)
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
			return 0, false, classify("erasing "+t.Name, err)
		}
		found = append(found, r)
	}
	if err := rows.Err(); err != nil {
		return 0, false, classify("erasing "+t.Name, err)
	}
	if len(found) == 0 {
		return 0, false, nil
	}
	// The per-row update numbers its own parameters: replacements, transformed values, key.
	var rowSets []string
	var fixed []any
	for i := range t.Columns {
		col := &t.Columns[i]
		switch col.Erase {
		case StrategyNull:
			rowSets = append(rowSets, ident(col.Name)+" = NULL")
		case StrategyReplace:
			fixed = append(fixed, *col.Value)
			rowSets = append(rowSets, fmt.Sprintf("%s = $%d", ident(col.Name), len(fixed)))
		}
	}
	for i, col := range inGo {
		rowSets = append(rowSets, fmt.Sprintf("%s = $%d", ident(col.Name), len(fixed)+i+1))
	}
	upd := fmt.Sprintf("UPDATE %s SET %s WHERE %s = $%d::text::%s",
		c.ref(t.Name), strings.Join(rowSets, ", "), ident(t.Key), len(fixed)+len(inGo)+1, s.keyType[t.Name])
	var b pgx.Batch
	for _, r := range found {
		a := append([]any{}, fixed...)
		for i, col := range inGo {
			a = append(a, c.transform(col, r.vals[i]))
		}
		a = append(a, r.key)
		b.Queue(upd, a...)
	}
	br := tx.SendBatch(ctx, &b)
	for range found {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return 0, false, classify("erasing "+t.Name, err)
		}
	}
	if err := br.Close(); err != nil {
		return 0, false, classify("erasing "+t.Name, err)
	}
	return int64(len(found)), false, nil
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

// verify counts rows that still hold what the erasure removed: deleted rows, and columns
// that should now be NULL or the replacement value.
func (c *Connector) verify(ctx context.Context, tx pgx.Tx, s *schemaInfo, keys []string) error {
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
		return nil
	}
	var left int64
	if err := tx.QueryRow(ctx, "SELECT "+strings.Join(parts, " + "), args...).Scan(&left); err != nil {
		return classify("verifying the erasure", err)
	}
	if left > 0 {
		// A row written concurrently for this subject; the retry erases it too.
		return fmt.Errorf("verifying the erasure: %d rows still hold erased data", left)
	}
	return nil
}

// inLedger runs fn in one transaction together with the ledger entry for task.Key. If the key
// was applied before, fn does not run and out receives the stored result.
func (c *Connector) inLedger(ctx context.Context, task connectors.Task, action connectors.Capability, out any, fn func(pgx.Tx) error) error {
	if strings.TrimSpace(task.Key) == "" {
		return connectors.Permanent(errors.New("task has no idempotency key"))
	}
	doing := string(action)
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return classify(doing, ctxErr(ctx, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// A concurrent attempt with the same key waits here until the first commits or rolls back.
	tag, err := tx.Exec(ctx, "INSERT INTO "+c.ledger()+" (task_key, action, request_id, tenant_id) VALUES ($1, $2, $3, $4) ON CONFLICT (task_key) DO NOTHING",
		task.Key, string(action), task.RequestID, task.TenantID)
	if err != nil {
		return classify(doing+": recording the task", ctxErr(ctx, err))
	}
	if tag.RowsAffected() == 0 {
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
	if err := fn(tx); err != nil {
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
