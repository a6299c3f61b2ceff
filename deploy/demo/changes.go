package demo

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// trackChangesSQL logs every row a statement updates or deletes in the customers table, in
// the same transaction as the change: an erasure applied twice (a hash of a hash, a second
// "Erased" write) shows as a second entry, which a ledger keyed by the task key cannot show.
// Only the row's id and the operation are logged, never its values.
const trackChangesSQL = `
CREATE TABLE IF NOT EXISTS demo_changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name  text   NOT NULL,
    row_id      bigint NOT NULL,
    operation   text   NOT NULL,
    txid        bigint NOT NULL DEFAULT txid_current()
);
CREATE OR REPLACE FUNCTION demo_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO demo_changes (table_name, row_id, operation) VALUES (TG_TABLE_NAME, OLD.id, TG_OP);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER demo_log_change AFTER UPDATE OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION demo_log_change();
`

// TrackChanges starts logging each change applied to a customer's row, for tests that claim
// an operation was applied exactly once (see Changes). The demo itself does not use it.
func TrackChanges(ctx context.Context, db *pgxpool.Pool) error {
	if _, err := db.Exec(ctx, trackChangesSQL); err != nil {
		return fmt.Errorf("installing the demo change log: %w", err)
	}
	return nil
}

// Changes returns how many times the customer's row was updated or deleted since
// TrackChanges: one erasure, restriction or rectification applied is one change.
func Changes(ctx context.Context, db *pgxpool.Pool, customerID int64) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM demo_changes WHERE table_name = 'customers' AND row_id = $1`, customerID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting changes to customer %d: %w", customerID, err)
	}
	return n, nil
}

// CustomerID returns the id of the customer with the given customer number.
func CustomerID(ctx context.Context, db *pgxpool.Pool, number string) (int64, error) {
	var id int64
	if err := db.QueryRow(ctx, `SELECT id FROM customers WHERE customer_number = $1`, number).Scan(&id); err != nil {
		return 0, fmt.Errorf("finding customer %s: %w", number, err)
	}
	return id, nil
}
