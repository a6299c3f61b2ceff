package dashboard_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/dashboard"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// The benchmarks run on a generated read model and audit trail across benchTenants tenants.
// LETHE_BENCH_SCALE=full gives the size (1,000,000 requests, 10,000,000 audit events);
// the default is small so `go test -bench` stays quick. LETHE_BENCH_DATABASE_URL keeps the
// data between runs (generation is skipped when present); without it a fresh database is used.
const benchTenants = 50

type benchScale struct{ requests, events int }

func scale() benchScale {
	if os.Getenv("LETHE_BENCH_SCALE") == "full" {
		return benchScale{requests: 1_000_000, events: 10_000_000}
	}
	return benchScale{requests: 20_000, events: 200_000}
}

// benchActions are the audit actions generated, the first the most frequent; benchRare is one
// in a hundred.
var benchActions = []string{"request.received", "subject.notified", "request.in_progress", "connector.succeeded", "request.completed",
	"request.pending_approval", "request.identity_verified", "export.downloaded", "request.subject_viewed"}

const benchRare = "request.denied"

// benchData fills the database at url (migrated) unless it already holds the data. Requests:
// one in ten open, due from 10 days ago to 50 days ahead; the rest completed, due over the
// past two years. Events: spread over the tenants and two years, mostly by lethe.
func benchData(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	ctx := context.Background()
	sc := scale()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM requests`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n >= sc.requests {
		return
	}
	start := time.Now()
	restore := withoutIndexes(b, pool, "requests")
	_, err := pool.Exec(ctx, `
		INSERT INTO requests (id, tenant_id, type, status, regime, extended, channel, received_at, due_date, updated_at, started, state)
		SELECT 'R-' || lpad(g::text, 9, '0'), 't' || (g % $2), (ARRAY['access','erasure','portability','rectification','restriction','objection'])[1 + h % 6],
			CASE WHEN h % 10 = 0 THEN (ARRAY['in_progress','pending_approval','blocked','identity_pending','failed'])[1 + (h / 10) % 5] ELSE 'completed' END,
			'gdpr', h % 17 = 0, (ARRAY['api','myaccount','kafka','slack'])[1 + h % 4], d - interval '25 days', d,
			CASE WHEN h % 10 = 0 THEN now() ELSE d - interval '3 days' END, true,
			jsonb_build_object('connectors', jsonb_build_array(jsonb_build_object('connector', 'database', 'action', 'erase',
				'status', CASE WHEN h % 10 <> 0 THEN 'succeeded' WHEN (h / 10) % 7 = 0 THEN 'failed' ELSE 'pending' END)))
		FROM generate_series(1, $1) g,
			-- h numbers a tenant's requests, so every tenant gets every kind
			LATERAL (SELECT g / $2 AS h) hh,
			LATERAL (SELECT CASE WHEN h % 10 = 0 THEN current_date - 10 + (h / 10) % 60 ELSE current_date - 1 - (h % 730) END AS d) dd`,
		sc.requests, benchTenants)
	if err != nil {
		b.Fatalf("generating requests: %v", err)
	}
	restore()
	b.Logf("generated %d requests in %s", sc.requests, time.Since(start).Round(time.Second))

	// The chain and append-only triggers are off while the generated trail is copied in: its
	// events carry their own sequence numbers and placeholder hashes, and the chain is not
	// what these benchmarks read.
	start = time.Now()
	if _, err := pool.Exec(ctx, `ALTER TABLE audit_events DISABLE TRIGGER USER`); err != nil {
		b.Fatal(err)
	}
	restore = withoutIndexes(b, pool, "audit_events")
	const batch = 1_000_000
	for from := 1; from <= sc.events; from += batch {
		to := min(from+batch-1, sc.events)
		_, err := pool.Exec(ctx, `
			INSERT INTO audit_events (tenant_id, seq, occurred_at, actor, action, request_id, subject_ref, detail, prev_hash, hash)
			SELECT 't' || (g % $3), g / $3 + 1, now() - make_interval(secs => ($4 - g) * (730 * 86400.0 / $4)),
				CASE WHEN (g / $3) % 10 < 7 THEN 'lethe' ELSE 'staff-' || ((g / $3) % 23) || ' (dashboard:t' || (g % $3) || '/dpo)' END,
				CASE WHEN (g / $3) % 100 = 42 THEN $5 ELSE ($6::text[])[1 + (g / $3) % cardinality($6::text[])] END,
				'R-' || lpad((1 + g % $7)::text, 9, '0'),
				CASE WHEN (g / $3) % 20 = 0 THEN md5('subject' || (g % $3) || ':' || ((g / $3 / 20) % 2000)) || md5('ref' || (g % $3) || ':' || ((g / $3 / 20) % 2000)) END,
				'{}', '-', '-'
			FROM generate_series($1::bigint, $2::bigint) g`, from, to, benchTenants, sc.events, benchRare, benchActions, sc.requests)
		if err != nil {
			b.Fatalf("generating audit events: %v", err)
		}
		b.Logf("generated %d/%d audit events, %s", to, sc.events, time.Since(start).Round(time.Second))
	}
	restore()
	b.Logf("indexed the audit events, %s", time.Since(start).Round(time.Second))
	if _, err := pool.Exec(ctx, `ALTER TABLE audit_events ENABLE TRIGGER USER`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE requests; ANALYZE audit_events`); err != nil {
		b.Fatal(err)
	}
}

// withoutIndexes drops table's indexes and unique constraints but its primary key, and returns
// what builds them again: building an index once over the loaded rows is many times faster
// than keeping it up to date row by row.
func withoutIndexes(b *testing.B, pool *pgxpool.Pool, table string) (restore func()) {
	b.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `
		SELECT i.relname, c.conname IS NOT NULL,
			COALESCE('ALTER TABLE ' || $1 || ' ADD CONSTRAINT ' || c.conname || ' ' || pg_get_constraintdef(c.oid), pg_get_indexdef(i.oid))
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
		LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.contype = 'u'
		WHERE x.indrelid = $1::regclass AND NOT x.indisprimary`, table)
	if err != nil {
		b.Fatal(err)
	}
	var drops, builds []string
	for rows.Next() {
		var name, def string
		var constraint bool
		if err := rows.Scan(&name, &constraint, &def); err != nil {
			b.Fatal(err)
		}
		if constraint {
			drops = append(drops, "ALTER TABLE "+table+" DROP CONSTRAINT "+name)
		} else {
			drops = append(drops, "DROP INDEX "+name)
		}
		builds = append(builds, def)
	}
	if rows.Err() != nil {
		b.Fatal(rows.Err())
	}
	for _, q := range drops {
		if _, err := pool.Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		for _, q := range builds {
			if _, err := pool.Exec(ctx, "SET maintenance_work_mem = '256MB'; "+q); err != nil {
				b.Fatalf("%s: %v", q, err)
			}
		}
	}
}

// benchServer serves the dashboard and /v1 over the generated data, with a dpo token for each
// tenant, and returns its URL, the pool and the tokens by tenant.
func benchServer(b *testing.B) (string, *pgxpool.Pool, map[string]string) {
	b.Helper()
	ctx := context.Background()
	dbURL := os.Getenv("LETHE_BENCH_DATABASE_URL")
	if dbURL == "" {
		dbURL = testenv.PostgresURL(b)
	}
	st, err := store.Open(ctx, dbURL, 8)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	benchData(b, st.Pool)

	env := map[string]string{"LETHE_SIGNING_KEY": "bench-signing-key-0123456789abcdef", "DATABASE_URL": dbURL, "LETHE_KAFKA_BROKERS": "127.0.0.1:9"}
	tokens := map[string]string{}
	var yaml strings.Builder
	yaml.WriteString("tenants:\n")
	for i := 0; i < benchTenants; i++ {
		t := fmt.Sprintf("t%d", i)
		tokens[t] = "bench-dpo-token-" + t
		env["BENCH_TOKEN_"+t] = tokens[t]
		fmt.Fprintf(&yaml, "  - {id: %s, regime: gdpr, country: DE, dpo_email: dpo@bench.example, tokens: [{role: dpo, env: BENCH_TOKEN_%s}]}\n", t, t)
	}
	cfg := config.Defaults()
	if err := config.Parse([]byte(yaml.String()), &cfg); err != nil {
		b.Fatal(err)
	}
	if err := config.Resolve(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		b.Fatal(err)
	}
	svc := &requests.Service{Store: st, Cfg: cfg}
	mux := http.NewServeMux()
	if err := api.MountV1(mux, api.V1Options{Requests: svc}); err != nil {
		b.Fatal(err)
	}
	if err := dashboard.Mount(mux, dashboard.Options{Requests: svc, SigningKey: []byte(env["LETHE_SIGNING_KEY"])}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv.URL, st.Pool, tokens
}

// dashClient logs in to the dashboard with token.
func dashClient(b *testing.B, base, token string) *http.Client {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(base + "/dashboard")
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		b.Fatal("no CSRF token on the login page")
	}
	res, err = c.PostForm(base+"/dashboard/login", url.Values{"csrf_token": {string(m[1])}, "token": {token}})
	if err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("logging in: %v %v", res.Status, err)
	}
	res.Body.Close()
	return c
}

func fetch(b *testing.B, c *http.Client, req *http.Request, want string) time.Duration {
	b.Helper()
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	d := time.Since(start)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		b.Fatalf("%s: %s, without %q:\n%.2000s", req.URL, res.Status, want, body)
	}
	return d
}

// bare runs sql with args and reads every row: the floor each page is measured against.
func bare(b *testing.B, pool *pgxpool.Pool, sql string, args ...any) time.Duration {
	b.Helper()
	start := time.Now()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if rows.Err() != nil || n == 0 {
		b.Fatalf("bare query: %d rows, %v", n, rows.Err())
	}
	return time.Since(start)
}

func explain(b *testing.B, pool *pgxpool.Pool, sql string, args ...any) {
	b.Helper()
	rows, err := pool.Query(context.Background(), "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+sql, args...)
	if err != nil {
		b.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, line)
	}
	b.Logf("plan:\n%s", strings.Join(plan, "\n"))
}

// both runs the page and its floor, alternating which goes first so neither profits from the
// other warming caches.
func both(i int, page, floor func()) {
	if i%2 == 0 {
		page()
		floor()
		return
	}
	floor()
	page()
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func report(b *testing.B, page, floor []time.Duration) {
	p, f := median(page), median(floor)
	b.ReportMetric(float64(p.Microseconds())/1000, "page-p50-ms")
	b.ReportMetric(float64(f.Microseconds())/1000, "sql-p50-ms")
	b.ReportMetric(float64(p)/float64(f), "ratio")
}

// The floors: the SQL the store writes for each page, run bare on the same pool.
const (
	dueSoonSQL = `SELECT id, type, status, extended, channel, received_at, COALESCE(to_char(due_date, 'YYYY-MM-DD'), '')
		FROM requests WHERE tenant_id = $1 AND status NOT IN ('completed', 'denied', 'canceled') AND due_date < $2::date
		ORDER BY due_date ASC NULLS LAST, received_at ASC LIMIT 26 OFFSET 0`
	dueBeforeSQL = `SELECT id, type, status, extended, channel, received_at, COALESCE(to_char(due_date, 'YYYY-MM-DD'), '')
		FROM requests WHERE tenant_id = $1 AND due_date < $2::date
		ORDER BY due_date ASC NULLS LAST, received_at ASC LIMIT 100 OFFSET 0`
	auditSQL = `SELECT id, COALESCE(event_key, ''), tenant_id, occurred_at, actor, action, COALESCE(request_id, ''),
			COALESCE(breach_id, ''), COALESCE(subject_ref, ''), detail, seq, prev_hash, hash
		FROM audit_events WHERE tenant_id = $1 AND %s ORDER BY id DESC LIMIT 50`
	// auditPeriodSQL is auditSQL as the store writes it for a period that ended (Until).
	auditPeriodSQL = `SELECT id, COALESCE(event_key, ''), tenant_id, occurred_at, actor, action, COALESCE(request_id, ''),
			COALESCE(breach_id, ''), COALESCE(subject_ref, ''), detail, seq, prev_hash, hash
		FROM (SELECT * FROM audit_events WHERE tenant_id = $1 AND %s OFFSET 0) e ORDER BY id DESC LIMIT 50`
)

// BenchmarkDueWithin7Days is the dashboard's first page of open requests due within 7 days,
// one tenant after another, against the bare SQL of the same page.
func BenchmarkDueWithin7Days(b *testing.B) {
	base, pool, tokens := benchServer(b)
	clients := map[string]*http.Client{}
	for t, tok := range tokens {
		clients[t] = dashClient(b, base, tok)
	}
	week := time.Now().UTC().AddDate(0, 0, dashboard.DueSoonDays+1).Format(time.DateOnly)
	explain(b, pool, dueSoonSQL, "t7", week)
	var page, floor []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := fmt.Sprintf("t%d", i%benchTenants)
		req, _ := http.NewRequest(http.MethodGet, base+"/dashboard/requests?due=7", nil)
		both(i, func() { page = append(page, fetch(b, clients[t], req, `id="deadlines"`)) },
			func() { floor = append(floor, bare(b, pool, dueSoonSQL, t, week)) })
	}
	b.StopTimer()
	report(b, page, floor)
}

// BenchmarkListDueBefore is GET /v1/requests?due_before= (every status, 100 a page).
func BenchmarkListDueBefore(b *testing.B) {
	base, pool, tokens := benchServer(b)
	week := time.Now().UTC().AddDate(0, 0, 7).Format(time.DateOnly)
	explain(b, pool, dueBeforeSQL, "t7", week)
	var page, floor []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := fmt.Sprintf("t%d", i%benchTenants)
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/requests?due_before="+week, nil)
		req.Header.Set("Authorization", "Bearer "+tokens[t])
		both(i, func() { page = append(page, fetch(b, http.DefaultClient, req, `"requests":[{`)) },
			func() { floor = append(floor, bare(b, pool, dueBeforeSQL, t, week)) })
	}
	b.StopTimer()
	report(b, page, floor)
}

// BenchmarkActivityFiltered is the activity stream's first page under each filter in turn:
// a rare action, an actor, a request, a subject reference, and a month a year ago.
func BenchmarkActivityFiltered(b *testing.B) {
	base, pool, tokens := benchServer(b)
	clients := map[string]*http.Client{}
	for t, tok := range tokens {
		clients[t] = dashClient(b, base, tok)
	}
	monthAgo := time.Now().UTC().AddDate(-1, 0, 0).Truncate(24 * time.Hour)
	filters := []struct {
		name, query, cond string
		arg               func(t string) any
	}{
		{"subject", "subject=", "subject_ref = $2", benchSubject},
		{"action", "action=" + benchRare, "action = $2", func(string) any { return benchRare }},
		{"actor", "actor=", "actor = $2", func(t string) any { return "staff-3 (dashboard:" + t + "/dpo)" }},
		{"request", "request=", "request_id = $2", func(t string) any { return "R-" + fmt.Sprintf("%09d", 1+atoi(t[1:])) }},
		{"since-until", "since=" + monthAgo.Format(time.DateOnly) + "&until=" + monthAgo.AddDate(0, 0, 30).Format(time.DateOnly),
			"occurred_at >= $2 AND occurred_at < $3", nil},
	}
	for _, f := range filters {
		b.Run(f.name, func(b *testing.B) {
			args := func(t string) []any {
				if f.arg == nil {
					return []any{t, monthAgo, monthAgo.AddDate(0, 0, 31)}
				}
				return []any{t, f.arg(t)}
			}
			query := func(t string) string {
				if f.arg == nil {
					return f.query
				}
				if v, ok := f.arg(t).(string); ok && !strings.HasSuffix(f.query, "="+v) {
					return f.query + url.QueryEscape(v)
				}
				return f.query
			}
			sql := fmt.Sprintf(auditSQL, f.cond)
			if f.arg == nil {
				sql = fmt.Sprintf(auditPeriodSQL, f.cond)
			}
			explain(b, pool, sql, args("t7")...)
			// The first view of a tenant verifies its chain (bounded); the page then shows the
			// state kept, as every later view does.
			for t := range tokens {
				req, _ := http.NewRequest(http.MethodGet, base+"/dashboard/activity?"+query(t), nil)
				fetch(b, clients[t], req, `id="events"`)
			}
			var page, floor []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t := fmt.Sprintf("t%d", i%benchTenants)
				req, _ := http.NewRequest(http.MethodGet, base+"/dashboard/activity?"+query(t), nil)
				both(i, func() { page = append(page, fetch(b, clients[t], req, `id="events"`)) },
					func() { floor = append(floor, bare(b, pool, sql, args(t)...)) })
			}
			b.StopTimer()
			report(b, page, floor)
		})
	}
}

// benchSubject is the reference of tenant t's subject 1, as the generator writes it.
func benchSubject(t string) any {
	h := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
	return h("subject"+t[1:]+":1") + h("ref"+t[1:]+":1")
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}
