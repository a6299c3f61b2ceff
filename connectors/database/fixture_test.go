package database_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/database"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// The demo dataset is loaded as of this instant; the database's own clock decides what is
// "in the future" for blocking rules, so future bookings are placed relative to it.
var loadedAt = time.Now().UTC()

const hashKey = "test-tenant-secret-0123456789abcdef"

// env is one test's database: the demo dataset, an admin pool for planting and inspecting
// rows, and a connector opened from deploy/demo/database-connector.yaml.
type env struct {
	admin *pgxpool.Pool
	conn  *database.Connector
	proxy *proxy
	seq   int
}

// newEnv loads the demo dataset into a fresh database. The connector reaches it through a
// proxy the test can cut, to simulate a lost connection.
func newEnv(t *testing.T, config []byte) *env {
	t.Helper()
	ctx := context.Background()
	dbURL := testenv.PostgresURL(t)
	admin, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	_, err = demo.Load(ctx, admin, loadedAt)
	require.NoError(t, err)
	require.NoError(t, demo.TrackChanges(ctx, admin))

	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	p := startProxy(t, u.Host)
	u.Host = p.addr
	t.Setenv("LETHE_DEMO_DATABASE_URL", u.String())
	t.Setenv("LETHE_DEMO_HASH_KEY", hashKey)

	if config == nil {
		config = demo.ConnectorConfig
	}
	c, err := connectors.Open(database.Name, config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Check(ctx))
	return &env{admin: admin, conn: c.(*database.Connector), proxy: p}
}

// seed plants a customer with a past paid booking, an invoice and payment, consents and a
// consultation note. future adds a booking next week; unpaid leaves the invoice unpaid.
func (e *env) seed(t *testing.T, future, unpaid bool) (connectors.Subject, int64) {
	t.Helper()
	ctx := context.Background()
	e.seq++
	n := e.seq
	s := connectors.Subject{
		Email:      fmt.Sprintf("Seeded.Person.%d@Example.com", n),
		Phone:      fmt.Sprintf("+447700900%03d", 500+n),
		CustomerID: fmt.Sprintf("SEED-%04d", n),
	}
	var id int64
	require.NoError(t, e.admin.QueryRow(ctx, `INSERT INTO customers
		(customer_number, first_name, last_name, email, phone, birth_date, street, postcode, city, created_at)
		VALUES ($1, 'Seeded', 'Person', $2, $3, '1990-04-05', '1 Test Lane', 'NB7 2XY', 'Northbridge', now() - interval '400 days')
		RETURNING id`, s.CustomerID, s.Email, s.Phone).Scan(&id))
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := e.admin.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, status, notes, created_at)
		VALUES ($1, 1, 1, now() - interval '30 days', 'completed', 'Prefers a quiet room', now() - interval '40 days')`, id)
	if future {
		exec(`INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, status, created_at)
			VALUES ($1, 2, 1, now() + interval '7 days', 'booked', now())`, id)
	}
	var inv int64
	require.NoError(t, e.admin.QueryRow(ctx, `INSERT INTO invoices (customer_id, invoice_number, billing_name, billing_address, amount_cents, currency, issued_at, due_at)
		VALUES ($1, $2, 'Seeded Person', '1 Test Lane, NB7 2XY Northbridge', 4500, 'GBP', now() - interval '30 days', now() - interval '16 days')
		RETURNING id`, id, fmt.Sprintf("INV-SEED-%d", n)).Scan(&inv))
	if !unpaid {
		exec(`INSERT INTO payments (invoice_id, amount_cents, currency, paid_at, method, payer_name, card_last4)
			VALUES ($1, 4500, 'GBP', now() - interval '29 days', 'card', 'Seeded Person', '4242')`, inv)
	}
	exec(`INSERT INTO marketing_consents (customer_id, channel, granted, changed_at) VALUES ($1, 'email', true, now())`, id)
	exec(`INSERT INTO consultation_notes (customer_id, staff_id, recorded_at, allergies, skin_conditions, notes)
		VALUES ($1, 1, now() - interval '30 days', 'latex', 'eczema', 'Patch test first')`, id)
	return s, id
}

// hasPersonalData looks at the rows directly: any identifying value of the seeded customer
// left anywhere counts.
func (e *env) hasPersonalData(t *testing.T, s connectors.Subject) bool {
	t.Helper()
	var n int
	require.NoError(t, e.admin.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM customers WHERE lower(email) = lower($1) OR phone = $2
			OR (customer_number = $3 AND (first_name <> 'Erased' OR birth_date IS NOT NULL OR street IS NOT NULL)))
		+ (SELECT count(*) FROM consultation_notes n JOIN customers c ON c.id = n.customer_id WHERE c.customer_number = $3)
		+ (SELECT count(*) FROM marketing_consents m JOIN customers c ON c.id = m.customer_id WHERE c.customer_number = $3)
		+ (SELECT count(*) FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE c.customer_number = $3 AND i.billing_name <> 'Erased customer')
		+ (SELECT count(*) FROM bookings b JOIN customers c ON c.id = b.customer_id WHERE c.customer_number = $3 AND b.notes IS NOT NULL)`,
		s.Email, s.Phone, s.CustomerID).Scan(&n))
	return n > 0
}

// seedLarge plants a customer with n past bookings.
func (e *env) seedLarge(t *testing.T, n int) connectors.Subject {
	t.Helper()
	s, id := e.seed(t, false, false)
	_, err := e.admin.Exec(context.Background(), `INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, status, created_at)
		SELECT $1, 1 + g % 6, 1 + g % 5, now() - make_interval(hours => g), 'completed', now() - make_interval(hours => g + 24)
		FROM generate_series(1, $2) g`, id, n)
	require.NoError(t, err)
	return s
}

// proxy forwards TCP connections to PostgreSQL until cut.
type proxy struct {
	addr   string
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			if !p.track(c, up) {
				return
			}
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

// cut closes the listener and every forwarded connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func configWith(t *testing.T, from, to string) []byte {
	t.Helper()
	s := string(demo.ConnectorConfig)
	require.Contains(t, s, from)
	return []byte(strings.Replace(s, from, to, 1))
}
