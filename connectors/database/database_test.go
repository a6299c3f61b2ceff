package database_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/connectortest"
	"github.com/lethe-privacy/lethe/connectors/database"
	"github.com/lethe-privacy/lethe/deploy/demo"
)

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Features{
		Capabilities:    database.Capabilities,
		LargeResultRows: 20_000,
		InvalidParams:   map[string]any{"no_such_option": true},
		RectifyChanges:  map[string]any{"city": "Eastfold"},
		FindParams:      map[string]any{"finder": "customers_created_between", "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
		PurgeParams:     map[string]any{"rule": "cancelled_bookings"},
	}, func(t *testing.T) connectortest.Fixture {
		e := newEnv(t, nil)
		return connectortest.Fixture{
			Connector:       e.conn,
			Seed:            func(t *testing.T) connectors.Subject { s, _ := e.seed(t, false, false); return s },
			SeedBlocked:     func(t *testing.T) connectors.Subject { s, _ := e.seed(t, true, false); return s },
			SeedLarge:       e.seedLarge,
			HasPersonalData: e.hasPersonalData,
			Disconnect:      func(*testing.T) { e.proxy.cut() },
		}
	})
}

func task(key string, s connectors.Subject) connectors.Task {
	return connectors.Task{Key: key, RequestID: "req-" + key, TenantID: "demo", Subject: s}
}

func hmacHex(v string) string {
	m := hmac.New(sha256.New, []byte(hashKey))
	m.Write([]byte(strings.ToLower(v)))
	return hex.EncodeToString(m.Sum(nil))
}

func TestEraseKeepsFinancialRowsDeidentified(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	type money struct{ invoices, invoiced, payments, paid int64 }
	totals := func() money {
		var m money
		require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(DISTINCT i.id), coalesce(sum(DISTINCT i.amount_cents), 0), count(p.id), coalesce(sum(p.amount_cents), 0)
			FROM invoices i JOIN customers c ON c.id = i.customer_id LEFT JOIN payments p ON p.invoice_id = i.id
			WHERE c.customer_number = $1`, demo.ClearCustomerNumber).Scan(&m.invoices, &m.invoiced, &m.payments, &m.paid))
		return m
	}
	before := totals()
	require.Positive(t, before.invoices)
	require.Positive(t, before.payments)

	res, err := e.conn.Erase(ctx, task("erase-clear", connectors.Subject{Email: strings.ToUpper(demo.ClearCustomerEmail)}))
	require.NoError(t, err)
	assert.Equal(t, 1, res.Subjects)
	assert.Equal(t, []string{"invoices", "payments"}, res.Kept)
	assert.Equal(t, before.invoices, res.Anonymised["invoices"])

	assert.Equal(t, before, totals(), "invoices and payments are kept with their amounts")
	var identified int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM invoices i JOIN customers c ON c.id = i.customer_id
		LEFT JOIN payments p ON p.invoice_id = i.id
		WHERE c.customer_number = $1 AND (i.billing_name <> 'Erased customer' OR i.billing_address IS NOT NULL OR p.payer_name <> 'Erased customer')`,
		demo.ClearCustomerNumber).Scan(&identified))
	assert.Zero(t, identified, "kept rows are de-identified")

	var email, phone, postcode, first string
	var birth, city *string
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT email, phone, postcode, first_name, birth_date::text, city FROM customers WHERE customer_number = $1`,
		demo.ClearCustomerNumber).Scan(&email, &phone, &postcode, &first, &birth, &city))
	assert.Equal(t, hmacHex(demo.ClearCustomerEmail), email, "keyed hash of the normalised address")
	assert.Equal(t, hmacHex(demo.ClearCustomerPhone), phone)
	assert.Equal(t, "Erased", first)
	assert.Nil(t, birth)
	assert.Nil(t, city)
	assert.Regexp(t, `^NB\d+$`, postcode, "postcode redacted to its outward code")
}

func TestEraseDeletesHealthData(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	notes := func() (n int) {
		require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM consultation_notes n JOIN customers c ON c.id = n.customer_id
			WHERE c.customer_number = $1`, demo.HealthNotesCustomerNumber).Scan(&n))
		return n
	}
	had := notes()
	require.Positive(t, had)
	res, err := e.conn.Erase(ctx, task("erase-health", connectors.Subject{Email: demo.HealthNotesCustomerEmail, Phone: demo.HealthNotesCustomerPhone}))
	require.NoError(t, err)
	assert.EqualValues(t, had, res.Deleted["consultation_notes"])
	assert.Zero(t, notes())
	var others int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM consultation_notes`).Scan(&others))
	assert.Positive(t, others, "other customers' notes are untouched")
}

func TestBlockReasons(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)

	res, err := e.conn.BlockCheck(ctx, task("bc-future", connectors.Subject{CustomerID: demo.FutureBookingCustomerNumber}))
	require.NoError(t, err)
	require.Len(t, res.Blocks, 1)
	assert.Equal(t, "active_booking", res.Blocks[0].Code)
	// The subject reads the booking's time in the business's zone (the demo's time_zone).
	var startsAt time.Time
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT min(b.starts_at) FROM bookings b JOIN customers c ON c.id = b.customer_id
		WHERE c.customer_number = $1 AND b.starts_at > now() AND b.status <> 'cancelled'`, demo.FutureBookingCustomerNumber).Scan(&startsAt))
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	assert.Contains(t, res.Blocks[0].Reason, "You have a booking on "+startsAt.In(berlin).Format("2 January 2006 15:04 MST")+" ")
	assert.NotContains(t, res.Blocks[0].Reason, "{starts_at}")

	res, err = e.conn.BlockCheck(ctx, task("bc-unpaid", connectors.Subject{Email: demo.UnpaidInvoiceCustomerEmail}))
	require.NoError(t, err)
	require.Len(t, res.Blocks, 1)
	assert.Equal(t, "outstanding_balance", res.Blocks[0].Code)
	assert.Regexp(t, `unpaid balance of \d+\.\d\d GBP\.`, res.Blocks[0].Reason)

	res, err = e.conn.BlockCheck(ctx, task("bc-clear", connectors.Subject{Email: demo.ClearCustomerEmail}))
	require.NoError(t, err)
	assert.Empty(t, res.Blocks)

	for _, s := range []connectors.Subject{{CustomerID: demo.FutureBookingCustomerNumber}, {Email: demo.UnpaidInvoiceCustomerEmail}} {
		_, err := e.conn.Erase(ctx, task("erase-blocked-"+s.CustomerID+s.Email, s))
		require.Error(t, err)
		assert.True(t, connectors.IsPermanent(err))
		blocks, ok := connectors.BlocksOf(err)
		require.True(t, ok)
		assert.Len(t, blocks, 1)
	}
	var intact int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM customers WHERE email IN ($1, $2)`,
		demo.FutureBookingCustomerEmail, demo.UnpaidInvoiceCustomerEmail).Scan(&intact))
	assert.Equal(t, 2, intact, "blocked subjects keep their data")
	var ledger int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM lethe_applied_tasks`).Scan(&ledger))
	assert.Zero(t, ledger, "a refused erasure is not recorded as applied, so a later attempt can run")
}

// A runner that crashes after the erasure committed but before publishing the result will
// redeliver the command with the same key. The retry must not apply the erasure again:
// hashing an already hashed address, for one, would break matching of later sign-ups.
func TestRetryAfterCrashDoesNotApplyTwice(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	subj := connectors.Subject{CustomerID: demo.ClearCustomerNumber}
	snapshot := func() string {
		var s string
		require.NoError(t, e.admin.QueryRow(ctx, `SELECT c::text || (SELECT string_agg(b::text, ',' ORDER BY b.id) FROM bookings b WHERE b.customer_id = c.id)
			FROM customers c WHERE customer_number = $1`, demo.ClearCustomerNumber).Scan(&s))
		return s
	}
	first, err := e.conn.Erase(ctx, task("req-1/database/erase", subj))
	require.NoError(t, err)
	require.False(t, first.AlreadyApplied)
	after := snapshot()

	// The result of the first attempt was lost; the same command is delivered again.
	again, err := e.conn.Erase(ctx, task("req-1/database/erase", subj))
	require.NoError(t, err)
	assert.True(t, again.AlreadyApplied)
	assert.Equal(t, first.Anonymised, again.Anonymised, "the stored result is returned")
	assert.Equal(t, after, snapshot(), "nothing changed on the retry")
	id, err := demo.CustomerID(ctx, e.admin, demo.ClearCustomerNumber)
	require.NoError(t, err)
	changes, err := demo.Changes(ctx, e.admin, id)
	require.NoError(t, err)
	assert.Equal(t, 1, changes, "the customer's row was changed by one erasure only")

	// The same key used for another action is a mistake, not a no-op.
	_, err = e.conn.Restrict(ctx, task("req-1/database/erase", subj))
	assert.True(t, connectors.IsPermanent(err))
}

// A failure inside the transaction leaves neither data changes nor a ledger entry, so the
// retry performs the whole erasure.
func TestFailedEraseRollsBackEverything(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	_, err := e.admin.Exec(ctx, `CREATE FUNCTION fail_payments() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'payments are read-only' USING ERRCODE = '57P03'; END $$;
		CREATE TRIGGER fail_payments BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION fail_payments();`)
	require.NoError(t, err)
	subj := connectors.Subject{Email: demo.HealthNotesCustomerEmail}
	_, err = e.conn.Erase(ctx, task("req-2/database/erase", subj))
	require.Error(t, err)
	assert.False(t, connectors.IsPermanent(err), "57P03 (cannot connect now) is transient")

	var email string
	var notes, ledger int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT c.email, (SELECT count(*) FROM consultation_notes n WHERE n.customer_id = c.id),
		(SELECT count(*) FROM lethe_applied_tasks) FROM customers c WHERE customer_number = $1`, demo.HealthNotesCustomerNumber).Scan(&email, &notes, &ledger))
	assert.Equal(t, demo.HealthNotesCustomerEmail, email)
	assert.Positive(t, notes)
	assert.Zero(t, ledger)

	_, err = e.admin.Exec(ctx, `DROP TRIGGER fail_payments ON payments`)
	require.NoError(t, err)
	res, err := e.conn.Erase(ctx, task("req-2/database/erase", subj))
	require.NoError(t, err)
	assert.False(t, res.AlreadyApplied)
	assert.EqualValues(t, notes, res.Deleted["consultation_notes"])
}

func TestConfigurationNamingUnknownTablesOrColumnsIsRejected(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	cases := map[string][]byte{
		`unknown table "customers; DROP TABLE bookings; --"`: configWith(t, "  - name: marketing_consents\n", "  - name: \"customers; DROP TABLE bookings; --\"\n"),
		`unknown column "email\" = '' OR '1'='1" in table "customers"`: configWith(t, "{name: email, category: contact",
			`{name: "email\" = '' OR '1'='1", category: contact`),
		`unknown column "alergies" in table "consultation_notes"`: configWith(t, "{name: allergies,", "{name: alergies,"),
	}
	for want, cfg := range cases {
		c, err := connectors.Open(database.Name, cfg)
		require.NoError(t, err, "static validation passes; the catalog decides")
		err = c.Check(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), want)
		assert.True(t, connectors.IsPermanent(err))
		_ = c.Close()
	}
	// Nothing was executed from the configuration.
	var bookings int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM bookings`).Scan(&bookings))
	assert.Positive(t, bookings)

	_, err := connectors.Open(database.Name, configWith(t, "erase: hash, rectify: true}", "erase: shred}"))
	assert.ErrorContains(t, err, `unknown erase strategy "shred"`)
	_, err = connectors.Open(database.Name, configWith(t, "{name: amount_cents, category: financial}", "{name: amount_cents, category: financial, erase: \"null\"}"))
	assert.ErrorContains(t, err, "financial columns of a kept table must stay intact")
	_, err = connectors.Open(database.Name, configWith(t, "time_zone: Europe/Berlin", "time_zone: Europe/Berlinn"))
	assert.ErrorContains(t, err, `time_zone "Europe/Berlinn" is not an IANA time zone`)
}

func TestSubjectValuesAreInert(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	var customers int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM customers WHERE first_name <> 'Erased'`).Scan(&customers))
	for i, s := range []connectors.Subject{
		{Email: "' OR '1'='1"},
		{Email: "x'); DELETE FROM customers; --"},
		{CustomerID: "1 OR 1=1"},
		{Phone: `\'; DROP TABLE bookings; --`},
	} {
		k := "inert-" + string(rune('a'+i))
		res, err := e.conn.Erase(ctx, task(k, s))
		require.NoError(t, err)
		assert.Zero(t, res.Subjects)
		acc, err := e.conn.Access(ctx, task(k+"-access", s), discard{})
		require.NoError(t, err)
		assert.Zero(t, acc.Rows)
	}
	var after int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM customers WHERE first_name <> 'Erased'`).Scan(&after))
	assert.Equal(t, customers, after)
}

func TestAmbiguousSubjectIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	_, err := e.admin.Exec(ctx, `UPDATE customers SET phone = $1 WHERE customer_number IN ('C0000005', 'C0000006')`, "+447700900999")
	require.NoError(t, err)
	_, err = e.conn.Erase(ctx, task("ambiguous", connectors.Subject{Phone: "+447700900999"}))
	require.Error(t, err)
	assert.True(t, connectors.IsPermanent(err))
	assert.Contains(t, err.Error(), "ambiguous")
	assert.NotContains(t, err.Error(), "900999")
}

func TestRectifyAndRestrict(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	subj := connectors.Subject{CustomerID: demo.ClearCustomerNumber}

	tk := task("rectify-1", subj)
	tk.Params = map[string]any{"changes": map[string]any{"city": "Eastfold", "customers.birth_date": "1991-02-03"}}
	res, err := e.conn.Rectify(ctx, tk)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"customers.city": 1, "customers.birth_date": 1}, res.Updated)
	var city, birth string
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT city, birth_date::text FROM customers WHERE customer_number = $1`, demo.ClearCustomerNumber).Scan(&city, &birth))
	assert.Equal(t, "Eastfold", city)
	assert.Equal(t, "1991-02-03", birth)

	bad := task("rectify-2", subj)
	bad.Params = map[string]any{"changes": map[string]any{"amount_cents": 0}}
	_, err = e.conn.Rectify(ctx, bad)
	assert.True(t, connectors.IsPermanent(err), "only configured fields can be rectified")

	secretish := task("rectify-3", subj)
	secretish.Params = map[string]any{"changes": map[string]any{"birth_date": "born-SECRET-VALUE"}}
	_, err = e.conn.Rectify(ctx, secretish)
	require.Error(t, err)
	assert.True(t, connectors.IsPermanent(err))
	assert.NotContains(t, err.Error(), "SECRET", "values never reach error messages")

	r, err := e.conn.Restrict(ctx, task("restrict-1", subj))
	require.NoError(t, err)
	assert.True(t, r.Restricted)
	var restricted bool
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT processing_restricted_at IS NOT NULL FROM customers WHERE customer_number = $1`, demo.ClearCustomerNumber).Scan(&restricted))
	assert.True(t, restricted)

	lift := task("restrict-2", subj)
	lift.Params = map[string]any{"lift": true}
	_, err = e.conn.Restrict(ctx, lift)
	require.NoError(t, err)
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT processing_restricted_at IS NOT NULL FROM customers WHERE customer_number = $1`, demo.ClearCustomerNumber).Scan(&restricted))
	assert.False(t, restricted)
}

func TestObjectionStopsMarketingOnly(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	subj := connectors.Subject{CustomerID: demo.ClearCustomerNumber}
	_, err := e.admin.Exec(ctx, `UPDATE marketing_consents SET granted = true
		WHERE customer_id = (SELECT id FROM customers WHERE customer_number = $1)`, demo.ClearCustomerNumber)
	require.NoError(t, err)

	obj := task("object-1", subj)
	obj.Params = map[string]any{"purpose": "marketing"}
	r, err := e.conn.Restrict(ctx, obj)
	require.NoError(t, err)
	assert.True(t, r.Restricted)
	assert.Positive(t, r.Rows)
	var granted int
	var restricted bool
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE m.granted), bool_or(c.processing_restricted_at IS NOT NULL)
		FROM customers c JOIN marketing_consents m ON m.customer_id = c.id WHERE c.customer_number = $1`, demo.ClearCustomerNumber).Scan(&granted, &restricted))
	assert.Zero(t, granted, "every marketing consent withdrawn")
	assert.False(t, restricted, "an objection to marketing does not restrict all processing")

	again, err := e.conn.Restrict(ctx, obj)
	require.NoError(t, err)
	assert.True(t, again.AlreadyApplied)

	other := task("object-2", subj)
	other.Params = map[string]any{"purpose": "profiling"}
	r, err = e.conn.Restrict(ctx, other)
	require.NoError(t, err, "a purpose this system does not process needs nothing stopped")
	assert.Zero(t, r.Rows)
}

type subjects []connectors.Subject

func (s *subjects) WriteSubject(_ context.Context, x connectors.Subject) error {
	*s = append(*s, x)
	return nil
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)

	var found subjects
	res, err := e.conn.Find(ctx, connectors.Task{Key: "find-1", Params: map[string]any{"finder": "customers_with_health_notes"}}, &found)
	require.NoError(t, err)
	var want int64
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(DISTINCT customer_id) FROM consultation_notes`).Scan(&want))
	assert.Equal(t, want, res.Subjects)
	assert.Contains(t, found, connectors.Subject{Email: demo.HealthNotesCustomerEmail, Phone: demo.HealthNotesCustomerPhone, CustomerID: demo.HealthNotesCustomerNumber})

	found = nil
	from := loadedAt.AddDate(0, 0, -1000).Format("2006-01-02")
	to := loadedAt.AddDate(0, 0, -900).Format("2006-01-02")
	res, err = e.conn.Find(ctx, connectors.Task{Key: "find-2", Params: map[string]any{"finder": "customers_created_between", "from": from, "to": to}}, &found)
	require.NoError(t, err)
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM customers WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz`, from, to).Scan(&want))
	assert.Equal(t, want, res.Subjects)
	assert.Positive(t, res.Subjects)

	_, err = e.conn.Find(ctx, connectors.Task{Key: "find-3", Params: map[string]any{"finder": "customers_created_between", "from": from}}, &found)
	assert.True(t, connectors.IsPermanent(err), "missing param")
	_, err = e.conn.Find(ctx, connectors.Task{Key: "find-4", Params: map[string]any{"finder": "everyone"}}, &found)
	assert.True(t, connectors.IsPermanent(err), "unknown finder")
}

func TestPurgeInBatches(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, configWith(t, "batch_size: 1000", "batch_size: 7"))
	_, err := e.admin.Exec(ctx, `INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, status, created_at)
		SELECT 5, 1, 1, now() - make_interval(days => 400 + g), CASE WHEN g % 2 = 0 THEN 'cancelled' ELSE 'completed' END, now() - interval '900 days'
		FROM generate_series(1, 40) g`)
	require.NoError(t, err)
	count := func(cond string) (n int64) {
		require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM bookings WHERE `+cond).Scan(&n))
		return n
	}
	expired := count(`status = 'cancelled' AND starts_at < now() - interval '365 days'`)
	require.GreaterOrEqual(t, expired, int64(20))
	others := count(`NOT (status = 'cancelled' AND starts_at < now() - interval '365 days')`)

	// A bounded run stops after its batches; the next run continues.
	part, err := e.conn.Purge(ctx, connectors.Task{Key: "purge-1", Params: map[string]any{"rule": "cancelled_bookings", "max_batches": float64(2)}})
	require.NoError(t, err)
	assert.Equal(t, 2, part.Batches)
	assert.EqualValues(t, 14, part.Rows["cancelled_bookings"])

	rest, err := e.conn.Purge(ctx, connectors.Task{Key: "purge-2", Params: map[string]any{"rule": "cancelled_bookings"}})
	require.NoError(t, err)
	assert.Equal(t, expired, part.Rows["cancelled_bookings"]+rest.Rows["cancelled_bookings"])
	assert.Zero(t, count(`status = 'cancelled' AND starts_at < now() - interval '365 days'`))
	assert.Equal(t, others, count(`NOT (status = 'cancelled' AND starts_at < now() - interval '365 days')`), "rows inside retention are kept")

	_, err = e.conn.Purge(ctx, connectors.Task{Key: "purge-3", Params: map[string]any{"rule": "nope"}})
	assert.True(t, connectors.IsPermanent(err))
}

type discard struct{}

func (discard) BeginTable(context.Context, connectors.Table) error { return nil }
func (discard) WriteRow(context.Context, []any) error              { return nil }
func (discard) EndTable(context.Context) error                     { return nil }

// Several runners of one instance start at once against a database with no ledger yet: each
// creates it if missing, and none fails on the others' creation.
func TestRunnersStartingTogetherCreateTheLedgerOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	const ledger = "lethe_applied_tasks" // deploy/demo/database-connector.yaml's ledger_table
	for round := 0; round < 5; round++ {
		_, err := e.admin.Exec(ctx, `DROP TABLE `+pgx.Identifier{ledger}.Sanitize())
		require.NoError(t, err)
		const n = 8
		cs := make([]connectors.Connector, n)
		for i := range cs {
			c, err := connectors.Open(database.Name, demo.ConnectorConfig)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			cs[i] = c
		}
		errs := make(chan error, n)
		start := make(chan struct{})
		for _, c := range cs {
			go func() { <-start; errs <- c.Check(ctx) }()
		}
		close(start)
		for range cs {
			require.NoError(t, <-errs, "round %d", round)
		}
	}
}
