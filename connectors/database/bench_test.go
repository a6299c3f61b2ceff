package database_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/database"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// Benchmarks run on a generated dataset. LETHE_BENCH_SCALE=full gives the size
// (1,000,000 customers, 10,000,000 bookings, a subject with 100,000 rows); the default is
// small so `go test -bench` stays quick. LETHE_BENCH_DATABASE_URL keeps the dataset between
// runs (generation is skipped when present); without it a fresh database is used.
type benchScale struct {
	customers, heavyRows int
}

func scale() benchScale {
	if os.Getenv("LETHE_BENCH_SCALE") == "full" {
		return benchScale{customers: 1_000_000, heavyRows: 100_000}
	}
	return benchScale{customers: 20_000, heavyRows: 10_000}
}

const heavyCustomer = "BENCH-HEAVY"

func benchDB(b *testing.B) (*pgxpool.Pool, string) {
	b.Helper()
	ctx := context.Background()
	url := os.Getenv("LETHE_BENCH_DATABASE_URL")
	if url == "" {
		url = testenv.PostgresURL(b)
	}
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(admin.Close)
	sc := scale()
	start := time.Now()
	sum, err := demo.Generate(ctx, admin, time.Now(), demo.GenerateOptions{
		Customers: sc.customers, BookingsPerCustomer: 10, BatchSize: 20_000,
		Progress: func(p demo.Progress) {
			if p.Customers%200_000 == 0 {
				b.Logf("generated %d/%d customers, %d rows, %s", p.Customers, p.Total, p.Rows, time.Since(start).Round(time.Second))
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if !sum.AlreadyLoaded {
		b.Logf("generated %+v in %s", sum, time.Since(start).Round(time.Second))
	}
	// The heavy subject: a customer with heavyRows past bookings.
	_, err = admin.Exec(ctx, `
		WITH c AS (
			INSERT INTO customers (customer_number, first_name, last_name, email, phone, created_at)
			SELECT $1, 'Heavy', 'Booker', 'heavy.booker@example.com', '+447700900998', now() - interval '3 years'
			WHERE NOT EXISTS (SELECT 1 FROM customers WHERE customer_number = $1)
			RETURNING id)
		INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, status, created_at)
		SELECT c.id, 1 + g % 6, 1 + g % 5, now() - make_interval(mins => 15 * g), 'completed', now() - interval '3 years'
		FROM c, generate_series(1, $2) g`, heavyCustomer, sc.heavyRows)
	if err != nil {
		b.Fatal(err)
	}
	return admin, url
}

func benchConnector(b *testing.B, url string) *database.Connector {
	b.Helper()
	b.Setenv("LETHE_DEMO_DATABASE_URL", url)
	b.Setenv("LETHE_DEMO_HASH_KEY", hashKey)
	c, err := connectors.Open(database.Name, demo.ConnectorConfig)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if err := c.Check(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c.(*database.Connector)
}

// erasable returns customer numbers nothing blocks and nobody has erased yet.
func erasable(b *testing.B, admin *pgxpool.Pool, n int) []string {
	b.Helper()
	rows, err := admin.Query(context.Background(), `SELECT customer_number FROM customers c
		WHERE c.id > 4 AND c.first_name <> 'Erased' AND c.customer_number <> $2
		  AND NOT EXISTS (SELECT 1 FROM bookings k WHERE k.customer_id = c.id AND k.starts_at > now() AND k.status <> 'cancelled')
		  AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = c.id
		      AND i.amount_cents > (SELECT coalesce(sum(p.amount_cents), 0) FROM payments p WHERE p.invoice_id = i.id))
		ORDER BY c.id DESC LIMIT $1`, n, heavyCustomer)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			b.Fatal(err)
		}
		out = append(out, s)
	}
	if len(out) < n {
		b.Fatalf("only %d erasable customers left; regenerate the dataset", len(out))
	}
	return out
}

// handErase is the hand-written transaction doing the same work as the connector's erase of
// the demo configuration: lock, block check, the same updates and deletes, commit.
func handErase(ctx context.Context, db *pgxpool.Pool, number string) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var id int64
	var email, phone *string
	if err := tx.QueryRow(ctx, `SELECT id, email, phone FROM customers WHERE customer_number = $1 FOR UPDATE`, number).Scan(&id, &email, &phone); err != nil {
		return err
	}
	var blocked bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM bookings WHERE customer_id = $1 AND starts_at > now() AND status <> 'cancelled')
		OR EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = $1
			AND i.amount_cents > (SELECT coalesce(sum(amount_cents), 0) FROM payments WHERE invoice_id = i.id))`, id).Scan(&blocked); err != nil {
		return err
	}
	if blocked {
		return fmt.Errorf("blocked")
	}
	h := func(v *string) any {
		if v == nil {
			return nil
		}
		m := hmac.New(sha256.New, []byte(hashKey))
		m.Write([]byte(strings.ToLower(strings.TrimSpace(*v))))
		return hex.EncodeToString(m.Sum(nil))
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE customers SET first_name = 'Erased', last_name = 'Customer', email = $2, phone = $3, birth_date = NULL,
			street = NULL, postcode = substring(postcode from '^\s*(\S+)'), city = NULL WHERE id = $1`, []any{id, h(email), h(phone)}},
		{`UPDATE bookings SET notes = NULL WHERE customer_id = $1`, []any{id}},
		{`UPDATE invoices SET billing_name = 'Erased customer', billing_address = NULL WHERE customer_id = $1`, []any{id}},
		{`UPDATE payments SET payer_name = 'Erased customer' WHERE invoice_id IN (SELECT id FROM invoices WHERE customer_id = $1)`, []any{id}},
		{`DELETE FROM marketing_consents WHERE customer_id = $1`, []any{id}},
		{`DELETE FROM consultation_notes WHERE customer_id = $1`, []any{id}},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkEraseOneSubject erases one subject per iteration through the connector and, in the
// same iteration, another through the hand-written transaction, and reports both medians.
func BenchmarkEraseOneSubject(b *testing.B) {
	ctx := context.Background()
	admin, url := benchDB(b)
	c := benchConnector(b, url)
	subjects := erasable(b, admin, 2*b.N)
	var lethe, hand []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		viaLethe := func() {
			start := time.Now()
			s := subjects[2*i]
			if _, err := c.Erase(ctx, task(fmt.Sprintf("bench-%d-%s", time.Now().UnixNano(), s), connectors.Subject{CustomerID: s})); err != nil {
				b.Fatal(err)
			}
			lethe = append(lethe, time.Since(start))
		}
		viaSQL := func() {
			start := time.Now()
			if err := handErase(ctx, admin, subjects[2*i+1]); err != nil {
				b.Fatal(err)
			}
			hand = append(hand, time.Since(start))
		}
		// Alternate which goes first, so neither profits from the other warming caches.
		if i%2 == 0 {
			viaLethe()
			viaSQL()
		} else {
			viaSQL()
			viaLethe()
		}
	}
	b.StopTimer()
	l, h := median(lethe), median(hand)
	b.ReportMetric(float64(l.Microseconds())/1000, "lethe-p50-ms")
	b.ReportMetric(float64(h.Microseconds())/1000, "sql-p50-ms")
	b.ReportMetric(float64(l)/float64(h), "ratio")
}

// countingSink counts rows and samples the Go heap while rows stream.
type countingSink struct {
	rows     atomic.Int64
	peakHeap uint64
}

func (s *countingSink) BeginTable(context.Context, connectors.Table) error { return nil }
func (s *countingSink) EndTable(context.Context) error                     { return nil }
func (s *countingSink) WriteRow(_ context.Context, v []any) error {
	if s.rows.Add(1)%10_000 == 0 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		s.peakHeap = max(s.peakHeap, m.HeapInuse)
	}
	return nil
}

// peakRSS is the process's peak resident set (VmHWM) in MiB; resetPeakRSS starts it afresh
// so generation or earlier runs do not count.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// BenchmarkAccessStreaming exports the heavy subject (heavyRows bookings plus its other rows)
// and reports rows/s, the peak Go heap sampled during streaming and the process's peak RSS.
func BenchmarkAccessStreaming(b *testing.B) {
	ctx := context.Background()
	_, url := benchDB(b)
	c := benchConnector(b, url)
	// Return generation's memory to the OS first, so the peak is the export's own.
	debug.FreeOSMemory()
	resetPeakRSS()
	var rows int64
	var elapsed time.Duration
	var peakHeap uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sink := &countingSink{}
		start := time.Now()
		res, err := c.Access(ctx, task(fmt.Sprintf("access-%d", i), connectors.Subject{CustomerID: heavyCustomer}), sink)
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		rows += res.Rows
		peakHeap = max(peakHeap, sink.peakHeap)
	}
	b.StopTimer()
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(rows/int64(b.N)), "rows/op")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(peakRSS(), "peak-RSS-MiB")
}
