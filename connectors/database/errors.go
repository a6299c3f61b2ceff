package database

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lethe-privacy/lethe/connectors"
)

// dbError is a PostgreSQL error stripped of anything that could hold a value: messages of
// data and integrity errors quote the offending value, which may be personal data.
type dbError struct {
	code, msg string
}

func (e *dbError) Error() string { return fmt.Sprintf("%s (SQLSTATE %s)", e.msg, e.code) }

// SQLState returns the PostgreSQL error code.
func (e *dbError) SQLState() string { return e.code }

// sanitize replaces a PostgreSQL error by one that names only codes, tables, columns and
// constraints.
func sanitize(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	class := pg.Code[:2]
	switch class {
	case "42", "08", "40", "53", "57", "3D", "3F", "28":
		// Syntax, access, connection and resource messages name objects, not values.
		return &dbError{code: pg.Code, msg: pg.Message}
	}
	var parts []string
	for _, p := range [][2]string{{"table", pg.TableName}, {"column", pg.ColumnName}, {"constraint", pg.ConstraintName}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	msg := "database error"
	if len(parts) > 0 {
		msg += " on " + strings.Join(parts, ", ")
	}
	return &dbError{code: pg.Code, msg: msg}
}

// classify wraps err with what was being done and marks it permanent when retrying cannot
// help. Connection loss, timeouts, serialization failures, deadlocks and resource limits
// stay retryable.
func classify(doing string, err error) error {
	if err == nil {
		return nil
	}
	if connectors.IsPermanent(err) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	clean := sanitize(err)
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code[:2] {
		case "08", "40", "53", "57", "58", "55", "XX":
			return fmt.Errorf("%s: %w", doing, clean)
		case "42", "22", "23", "0A", "28", "3D", "3F", "2B", "21", "44":
			return connectors.Permanent(fmt.Errorf("%s: %w", doing, clean))
		}
	}
	return fmt.Errorf("%s: %w", doing, clean)
}
