package database

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lethe-privacy/lethe/connectors"
)

// Access streams the subject's rows, table by table in configuration order, from one
// read-only snapshot. Rows go to the sink as they arrive from the server, so memory does not
// grow with the number of rows.
func (c *Connector) Access(ctx context.Context, task connectors.Task, sink connectors.RecordSink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	if err := connectors.CheckParams(task); err != nil {
		return res, err
	}
	s, err := c.ready(ctx)
	if err != nil {
		return res, err
	}
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return res, classify("access", ctxErr(ctx, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	keys, err := c.subjects(ctx, tx, task.Subject, false)
	if err != nil {
		return res, err
	}
	if len(keys) == 0 {
		return res, nil
	}
	for i := range c.cfg.Tables {
		t := &c.cfg.Tables[i]
		n, err := c.accessTable(ctx, tx, s, t, keys, sink)
		res.Rows += n
		if err != nil {
			return res, err
		}
		res.Tables++
	}
	return res, nil
}

func (c *Connector) accessTable(ctx context.Context, tx pgx.Tx, s *schemaInfo, t *TableConfig, keys []string, sink connectors.RecordSink) (int64, error) {
	doing := "access: reading " + t.Name
	cols := make([]connectors.Column, len(t.Columns))
	sel := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		cols[i] = connectors.Column{Name: col.Name, Category: col.Category}
		sel[i] = "t0." + ident(col.Name)
	}
	if len(sel) == 0 {
		return 0, nil
	}
	if err := sink.BeginTable(ctx, connectors.Table{Name: t.Name, Columns: cols}); err != nil {
		return 0, fmt.Errorf("%s: sink: %w", doing, err)
	}
	q := fmt.Sprintf("SELECT %s FROM %s AS t0 WHERE %s ORDER BY t0.%s",
		strings.Join(sel, ", "), c.ref(t.Name), c.predicate(s, t, "t0", 0), ident(t.Key))
	rows, err := tx.Query(ctx, q, keys)
	if err != nil {
		return 0, classify(doing, ctxErr(ctx, err))
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("%s: %w", doing, err)
		}
		vals, err := rows.Values()
		if err != nil {
			return n, classify(doing, err)
		}
		if err := sink.WriteRow(ctx, vals); err != nil {
			return n, fmt.Errorf("%s: sink: %w", doing, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, classify(doing, ctxErr(ctx, err))
	}
	if err := sink.EndTable(ctx); err != nil {
		return n, fmt.Errorf("%s: sink: %w", doing, err)
	}
	return n, nil
}

// BlockCheck runs the blocking rules for the subject. A subject that is not found has no
// blocks.
func (c *Connector) BlockCheck(ctx context.Context, task connectors.Task) (connectors.BlockResult, error) {
	res := connectors.BlockResult{Blocks: []connectors.Block{}}
	if err := connectors.CheckParams(task); err != nil {
		return res, err
	}
	if _, err := c.ready(ctx); err != nil {
		return res, err
	}
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return res, classify("block check", ctxErr(ctx, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	keys, err := c.subjects(ctx, tx, task.Subject, false)
	if err != nil {
		return res, err
	}
	blocks, err := c.blocks(ctx, tx, keys)
	if err != nil {
		return res, err
	}
	res.Blocks = append(res.Blocks, blocks...)
	return res, nil
}

// maxBlocksPerRule keeps a rule that matches many rows (every future booking) readable.
const maxBlocksPerRule = 5

func (c *Connector) blocks(ctx context.Context, tx pgx.Tx, keys []string) ([]connectors.Block, error) {
	if len(keys) == 0 || len(c.cfg.Blocks) == 0 {
		return nil, nil
	}
	// All rules in one round trip.
	var b pgx.Batch
	for _, key := range keys {
		for _, rule := range c.cfg.Blocks {
			b.Queue(rule.Query, key)
		}
	}
	br := tx.SendBatch(ctx, &b)
	defer func() { _ = br.Close() }()
	var out []connectors.Block
	for range keys {
		for _, rule := range c.cfg.Blocks {
			rows, err := br.Query()
			if err != nil {
				return nil, classify("block rule "+rule.Code, ctxErr(ctx, err))
			}
			n := 0
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					rows.Close()
					return nil, classify("block rule "+rule.Code, err)
				}
				if n < maxBlocksPerRule {
					out = append(out, connectors.Block{Code: rule.Code, Reason: render(rule.Reason, rows.FieldDescriptions(), vals, c.cfg.location())})
				}
				n++
			}
			if err := rows.Err(); err != nil {
				return nil, classify("block rule "+rule.Code, ctxErr(ctx, err))
			}
		}
	}
	if err := br.Close(); err != nil {
		return nil, classify("block rules", ctxErr(ctx, err))
	}
	return out, nil
}

// render fills {column} placeholders of a reason with the row's values, times in zone.
func render(reason string, fields []pgconn.FieldDescription, vals []any, zone *time.Location) string {
	pairs := make([]string, 0, 2*len(fields))
	for i, f := range fields {
		pairs = append(pairs, "{"+f.Name+"}", format(vals[i], zone))
	}
	return strings.NewReplacer(pairs...).Replace(reason)
}

func format(v any, zone *time.Location) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.In(zone).Format("2 January 2006 15:04 MST")
	case fmt.Stringer:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}
