// Package demo builds the demo dataset: the database of a small salon and booking business,
// with customers, bookings, invoices and payments, marketing consent and consultation notes
// holding health data. Everything in it is made up: names come from small built-in lists and
// every address is under a reserved example domain or the UK's drama phone range.
//
// The same deterministic generator serves the demo (Load, a few hundred customers) and the
// benchmarks (Generate with a million customers, bulk-loaded with COPY).
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Well-known customers that the demo and the tests rely on. They are always the first four
// customers of a generated dataset.
const (
	// ClearCustomer has only past, completed bookings and every invoice paid: nothing blocks
	// erasure.
	ClearCustomerNumber = "DEMO-0001"
	ClearCustomerEmail  = "nora.clearwater@example.com"
	ClearCustomerPhone  = "+447700900001"

	// FutureBookingCustomer has a booking next week that is not cancelled: erasure is blocked
	// by an active booking.
	FutureBookingCustomerNumber = "DEMO-0002"
	FutureBookingCustomerEmail  = "felix.future@example.org"
	FutureBookingCustomerPhone  = "+447700900002"

	// UnpaidInvoiceCustomer has an invoice that is not paid: erasure is blocked by an
	// outstanding balance.
	UnpaidInvoiceCustomerNumber = "DEMO-0003"
	UnpaidInvoiceCustomerEmail  = "uma.unpaid@example.net"
	UnpaidInvoiceCustomerPhone  = "+447700900003"

	// HealthNotesCustomer has consultation notes with allergies and skin conditions (special
	// category data) and nothing blocking erasure.
	HealthNotesCustomerNumber = "DEMO-0004"
	HealthNotesCustomerEmail  = "hana.health@example.com"
	HealthNotesCustomerPhone  = "+447700900004"
)

// Defaults for Load.
const (
	DefaultCustomers           = 300
	DefaultBookingsPerCustomer = 4
	// Version of the dataset layout, recorded in demo_dataset.
	Version = 1
)

//go:embed schema.sql
var schemaSQL string

//go:embed indexes.sql
var indexesSQL string

// ConnectorConfig is deploy/demo/database-connector.yaml: the database connector's
// configuration for this dataset.
//
//go:embed database-connector.yaml
var ConnectorConfig []byte

// Summary counts the rows of the dataset.
type Summary struct {
	// AlreadyLoaded is true when the dataset was present and nothing was written.
	AlreadyLoaded     bool  `json:"already_loaded"`
	Customers         int64 `json:"customers"`
	Bookings          int64 `json:"bookings"`
	FutureBookings    int64 `json:"future_bookings"`
	Invoices          int64 `json:"invoices"`
	UnpaidInvoices    int64 `json:"unpaid_invoices"`
	Payments          int64 `json:"payments"`
	Consents          int64 `json:"consents"`
	ConsultationNotes int64 `json:"consultation_notes"`
}

// Progress is reported after each batch of a Generate.
type Progress struct {
	Customers int   // customers written so far
	Total     int   // customers to write
	Rows      int64 // rows written so far, all tables
}

// GenerateOptions sizes a generated dataset.
type GenerateOptions struct {
	// Customers is the total number of customers, the four well-known ones included
	// (at least 4).
	Customers int
	// BookingsPerCustomer is the number of bookings of each generated customer.
	BookingsPerCustomer int
	// BatchSize is the number of customers per COPY batch (default 10,000).
	BatchSize int
	// Progress, if set, is called after each batch.
	Progress func(Progress)
}

// Load creates the demo dataset in db if it is not there yet: schema, a few hundred customers
// with their bookings, invoices, payments, consents and notes, and indexes. Times are
// relative to now, so some bookings are in the future. A second call is a no-op that returns
// the current counts with AlreadyLoaded set.
func Load(ctx context.Context, db *pgxpool.Pool, now time.Time) (Summary, error) {
	return Generate(ctx, db, now, GenerateOptions{Customers: DefaultCustomers, BookingsPerCustomer: DefaultBookingsPerCustomer})
}

// advisoryKey serialises concurrent loads into the same database.
const advisoryKey = 0x6c657468_6564656d // "lethedem"

// Generate creates a dataset of the given size in one transaction, bulk-loading each batch of
// customers with COPY and building indexes afterwards. Like Load it does nothing if a dataset
// is already present.
func Generate(ctx context.Context, db *pgxpool.Pool, now time.Time, opts GenerateOptions) (Summary, error) {
	if opts.Customers < len(wellKnown) {
		return Summary{}, fmt.Errorf("generating demo dataset: at least %d customers are needed", len(wellKnown))
	}
	if opts.BookingsPerCustomer < 0 {
		return Summary{}, errors.New("generating demo dataset: BookingsPerCustomer must not be negative")
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 10_000
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("loading demo dataset: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(advisoryKey)); err != nil {
		return Summary{}, fmt.Errorf("locking demo dataset: %w", err)
	}
	var present bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('demo_dataset') IS NOT NULL").Scan(&present); err != nil {
		return Summary{}, fmt.Errorf("checking demo dataset: %w", err)
	}
	if present {
		s, err := count(ctx, tx, now)
		s.AlreadyLoaded = true
		return s, err
	}

	if _, err := tx.Exec(ctx, schemaSQL); err != nil {
		return Summary{}, fmt.Errorf("creating demo schema: %w", err)
	}
	g := newGenerator(now, opts)
	if err := g.reference(ctx, tx); err != nil {
		return Summary{}, err
	}
	for lo := 1; lo <= opts.Customers; lo += opts.BatchSize {
		hi := min(lo+opts.BatchSize-1, opts.Customers)
		b := g.batch(lo, hi)
		if err := b.copy(ctx, tx); err != nil {
			return Summary{}, err
		}
		if opts.Progress != nil {
			opts.Progress(Progress{Customers: hi, Total: opts.Customers, Rows: g.rows})
		}
	}
	if _, err := tx.Exec(ctx, indexesSQL); err != nil {
		return Summary{}, fmt.Errorf("creating demo indexes: %w", err)
	}
	// Explicit ids were loaded; move the identity sequences past them.
	for _, t := range []string{"customers", "services", "staff", "bookings", "invoices", "payments", "marketing_consents", "consultation_notes"} {
		q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence('%s', 'id'), coalesce((SELECT max(id) FROM %s), 0) + 1, false)", t, pgx.Identifier{t}.Sanitize())
		if _, err := tx.Exec(ctx, q); err != nil {
			return Summary{}, fmt.Errorf("advancing %s id sequence: %w", t, err)
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO demo_dataset (version, customers) VALUES ($1, $2)", Version, opts.Customers); err != nil {
		return Summary{}, fmt.Errorf("marking demo dataset: %w", err)
	}
	if _, err := tx.Exec(ctx, "ANALYZE"); err != nil {
		return Summary{}, fmt.Errorf("analyzing demo dataset: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Summary{}, fmt.Errorf("committing demo dataset: %w", err)
	}
	return g.summary, nil
}

func count(ctx context.Context, tx pgx.Tx, now time.Time) (Summary, error) {
	var s Summary
	err := tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM customers),
		(SELECT count(*) FROM bookings),
		(SELECT count(*) FROM bookings WHERE starts_at > $1),
		(SELECT count(*) FROM invoices),
		(SELECT count(*) FROM invoices i WHERE i.amount_cents > (SELECT coalesce(sum(p.amount_cents), 0) FROM payments p WHERE p.invoice_id = i.id)),
		(SELECT count(*) FROM payments),
		(SELECT count(*) FROM marketing_consents),
		(SELECT count(*) FROM consultation_notes)`, now).
		Scan(&s.Customers, &s.Bookings, &s.FutureBookings, &s.Invoices, &s.UnpaidInvoices, &s.Payments, &s.Consents, &s.ConsultationNotes)
	if err != nil {
		return s, fmt.Errorf("counting demo dataset: %w", err)
	}
	return s, nil
}
