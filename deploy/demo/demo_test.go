package demo_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

var now = time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)

func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), testenv.PostgresURL(t))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func TestLoadIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db := pool(t)

	first, err := demo.Load(ctx, db, now)
	require.NoError(t, err)
	assert.False(t, first.AlreadyLoaded)
	assert.EqualValues(t, demo.DefaultCustomers, first.Customers)
	assert.Greater(t, first.FutureBookings, int64(0))
	assert.Greater(t, first.UnpaidInvoices, int64(0))
	assert.Greater(t, first.ConsultationNotes, int64(0))
	assert.Greater(t, first.Payments, int64(0))

	second, err := demo.Load(ctx, db, now)
	require.NoError(t, err)
	assert.True(t, second.AlreadyLoaded)
	second.AlreadyLoaded = false
	// Counted from the database, the second summary must agree with what the first wrote.
	assert.Equal(t, first, second)
}

func TestLoadIsDeterministic(t *testing.T) {
	ctx := context.Background()
	digest := func(db *pgxpool.Pool) string {
		var d string
		require.NoError(t, db.QueryRow(ctx, `SELECT md5(string_agg(c::text, '|' ORDER BY c.id)) ||
			(SELECT md5(string_agg(b::text, '|' ORDER BY b.id)) FROM bookings b) FROM customers c`).Scan(&d))
		return d
	}
	a, b := pool(t), pool(t)
	_, err := demo.Load(ctx, a, now)
	require.NoError(t, err)
	// A different batch size must not change the rows.
	_, err = demo.Generate(ctx, b, now, demo.GenerateOptions{Customers: demo.DefaultCustomers, BookingsPerCustomer: demo.DefaultBookingsPerCustomer, BatchSize: 7})
	require.NoError(t, err)
	assert.Equal(t, digest(a), digest(b))
}

func TestWellKnownCustomers(t *testing.T) {
	ctx := context.Background()
	db := pool(t)
	_, err := demo.Load(ctx, db, now)
	require.NoError(t, err)

	type facts struct{ future, unpaid, notes int }
	get := func(number, email, phone string) facts {
		t.Helper()
		var f facts
		require.NoError(t, db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM bookings b WHERE b.customer_id = c.id AND b.starts_at > $2 AND b.status <> 'cancelled'),
			(SELECT count(*) FROM invoices i WHERE i.customer_id = c.id
				AND i.amount_cents > (SELECT coalesce(sum(amount_cents), 0) FROM payments p WHERE p.invoice_id = i.id)),
			(SELECT count(*) FROM consultation_notes n WHERE n.customer_id = c.id)
			FROM customers c WHERE customer_number = $1 AND email = $3 AND phone = $4`, number, now, email, phone).
			Scan(&f.future, &f.unpaid, &f.notes))
		return f
	}
	assert.Equal(t, facts{}, get(demo.ClearCustomerNumber, demo.ClearCustomerEmail, demo.ClearCustomerPhone))
	assert.Equal(t, facts{future: 1}, get(demo.FutureBookingCustomerNumber, demo.FutureBookingCustomerEmail, demo.FutureBookingCustomerPhone))
	assert.Equal(t, facts{unpaid: 1}, get(demo.UnpaidInvoiceCustomerNumber, demo.UnpaidInvoiceCustomerEmail, demo.UnpaidInvoiceCustomerPhone))
	h := get(demo.HealthNotesCustomerNumber, demo.HealthNotesCustomerEmail, demo.HealthNotesCustomerPhone)
	assert.Greater(t, h.notes, 0)
	assert.Zero(t, h.future+h.unpaid)

	// Every address is under a reserved example domain.
	var outside int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM customers WHERE email !~ '@example\.(com|org|net)$'`).Scan(&outside))
	assert.Zero(t, outside)
}

func TestGenerateReportsProgressInBatches(t *testing.T) {
	ctx := context.Background()
	db := pool(t)
	var seen []demo.Progress
	s, err := demo.Generate(ctx, db, now, demo.GenerateOptions{Customers: 2500, BookingsPerCustomer: 3, BatchSize: 1000,
		Progress: func(p demo.Progress) { seen = append(seen, p) }})
	require.NoError(t, err)
	require.Len(t, seen, 3)
	assert.Equal(t, []int{1000, 2000, 2500}, []int{seen[0].Customers, seen[1].Customers, seen[2].Customers})
	assert.Equal(t, s.Customers+s.Bookings+s.Invoices+s.Payments+s.Consents+s.ConsultationNotes, seen[2].Rows)
	// Generated customers have exactly the requested bookings; the four well-known ones their own.
	var exact int64
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM (SELECT customer_id FROM bookings WHERE customer_id > 4
		GROUP BY customer_id HAVING count(*) = 3) x`).Scan(&exact))
	assert.EqualValues(t, 2500-4, exact)

	_, err = demo.Generate(ctx, db, now, demo.GenerateOptions{Customers: 3})
	assert.Error(t, err)
}
