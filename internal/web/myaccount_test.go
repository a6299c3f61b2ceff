package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/internal/web/htmlcheck"
	"github.com/lethe-privacy/lethe/internal/web/webtest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type browser struct {
	t    *testing.T
	base string
	http *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, []byte) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	res, err := b.http.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, raw
}

// page loads an HTML page, checks its accessibility basics and returns it with its CSRF token.
func (b *browser) page(path string, want int) (string, string) {
	b.t.Helper()
	res, raw := b.do(http.MethodGet, path, nil)
	require.Equal(b.t, want, res.StatusCode, "%s: %s", path, raw)
	htmlcheck.Check(b.t, string(raw))
	return string(raw), htmlcheck.Inputs(b.t, string(raw))["csrf_token"]
}

// An access request made on MyAccount runs on the real stack: the code arrives by email,
// verifying binds this browser, the status page shows the due date and every step, and once
// completed the download returns the customer's data.
func TestMyAccountAccessRequestOnTheRealStack(t *testing.T) {
	s := webtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	email := demo.HealthNotesCustomerEmail
	b := newBrowser(t, s.URL)

	_, tok := b.page("/myaccount", http.StatusOK)
	res, raw := b.do(http.MethodPost, "/myaccount/requests", url.Values{"csrf_token": {tok}, "type": {"access"}, "email": {email}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, string(raw))
	verify := res.Header.Get("Location")
	id := strings.TrimSuffix(strings.TrimPrefix(verify, "/myaccount/requests/"), "/verify")
	require.NotEmpty(t, id)

	page, tok := b.page(verify, http.StatusOK)
	assert.Contains(t, page, "we have emailed you a code")
	assert.NotContains(t, page, email)

	// The status is not for whoever holds the id, not even this browser before it verified.
	res, _ = b.do(http.MethodGet, "/myaccount/requests/"+id, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	code, err := webtest.AwaitCode(ctx, s.URL, email, id)
	require.NoError(t, err)
	require.NotEmpty(t, code)
	// A subject takes seconds to read the email; this test takes milliseconds. VerifyCode
	// spends the code even when the workflow has not reached identity_pending yet, so wait
	// for that as a subject would.
	awaitStatus(ctx, t, s, id, "identity_pending")

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	res, raw = b.do(http.MethodPost, verify, url.Values{"csrf_token": {tok}, "code": {wrong}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	assert.Contains(t, string(raw), "That code is not right")

	res, raw = b.do(http.MethodPost, verify, url.Values{"csrf_token": {tok}, "code": {code}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, string(raw))
	status := res.Header.Get("Location")
	require.Equal(t, "/myaccount/requests/"+id, status)

	page, _ = b.page(status, http.StatusOK)
	assert.Contains(t, page, "We must answer by")
	assert.Contains(t, page, "We received your request")
	assert.Contains(t, page, "You confirmed it is you")

	// Wait for completion the way a subject does: by looking again.
	for !strings.Contains(page, `<p class="status-label">Done</p>`) {
		select {
		case <-ctx.Done():
			t.Fatalf("request %s never showed as done; last page:\n%s", id, page)
		case <-time.After(200 * time.Millisecond):
		}
		page, _ = b.page(status, http.StatusOK)
	}
	assert.Contains(t, page, "We started working on your request")
	assert.Contains(t, page, "Your request was completed")
	assert.Contains(t, page, `href="/myaccount/requests/`+id+`/export"`)

	res, raw = b.do(http.MethodGet, status+"/export", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	assert.Equal(t, "application/zip", res.Header.Get("Content-Type"))
	files := teststack.Unzip(t, raw)
	customers := teststack.Rows(t, files, "database/customers.json")
	require.Len(t, customers, 1)
	assert.Equal(t, email, customers[0]["email"])
	assert.Equal(t, bookingTimes(t, s, email), exportedBookingTimes(t, teststack.Rows(t, files, "database/bookings.json")))

	// Another browser with the id sees nothing, and cannot download.
	other := newBrowser(t, s.URL)
	res, _ = other.do(http.MethodGet, status, nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	res, _ = other.do(http.MethodGet, status+"/export", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}

// Forms posted without this browser's token change nothing.
func TestMyAccountRefusesFormsWithoutTheCSRFToken(t *testing.T) {
	s := webtest.Start(t)
	b := newBrowser(t, s.URL)
	b.page("/myaccount", http.StatusOK) // sets the CSRF cookie
	res, raw := b.do(http.MethodPost, "/myaccount/requests", url.Values{"type": {"access"}, "email": {demo.ClearCustomerEmail}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	htmlcheck.Check(t, string(raw))
	var n int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM requests`).Scan(&n))
	assert.Zero(t, n, "no request was recorded")
}

func awaitStatus(ctx context.Context, t *testing.T, s *webtest.Stack, id, want string) {
	t.Helper()
	for {
		st, err := s.Deps.Requests().Get(ctx, webtest.Tenant, id)
		if err == nil && st.Status == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("request %s never reached %s (last %q, %v)", id, want, st.Status, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func bookingTimes(t *testing.T, s *webtest.Stack, email string) []string {
	rows, err := s.Demo.Query(context.Background(), `SELECT b.starts_at FROM bookings b JOIN customers c ON c.id = b.customer_id WHERE c.email = $1`, email)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var at time.Time
		require.NoError(t, rows.Scan(&at))
		out = append(out, at.UTC().Format(time.RFC3339))
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, out, "the demo customer has bookings")
	sort.Strings(out)
	return out
}

func exportedBookingTimes(t *testing.T, rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		at, err := time.Parse(time.RFC3339Nano, r["starts_at"].(string))
		require.NoError(t, err)
		out = append(out, at.UTC().Format(time.RFC3339))
	}
	sort.Strings(out)
	return out
}

// One client asking a thousand times about one address gets the subject's budget of requests
// (limits.submit.subject), and then a page saying to wait, with Retry-After, every time.
func TestMyAccountRefusesAFloodOfRequestsForOneAddress(t *testing.T) {
	s := webtest.Start(t)
	ctx := context.Background()
	b := newBrowser(t, s.URL)
	_, tok := b.page("/myaccount", http.StatusOK)
	budget := s.Cfg.Limits.Submit.Subject.N
	accepted := 0
	for i := range 1000 {
		res, raw := b.do(http.MethodPost, "/myaccount/requests", url.Values{"csrf_token": {tok}, "type": {"access"}, "email": {demo.ClearCustomerEmail}})
		if i < budget {
			require.Equal(t, http.StatusSeeOther, res.StatusCode, "submission %d: %s", i+1, raw)
			accepted++
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "submission %d of one address from one client", i+1)
		retry, err := strconv.Atoi(res.Header.Get("Retry-After"))
		require.NoError(t, err, "Retry-After %q", res.Header.Get("Retry-After"))
		require.Positive(t, retry)
		if i == budget {
			htmlcheck.Check(t, string(raw))
			assert.Contains(t, string(raw), "Please wait before trying again")
			assert.NotContains(t, string(raw), demo.ClearCustomerEmail)
		}
	}
	var n int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM requests`).Scan(&n))
	assert.Equal(t, accepted, n, "refused submissions record nothing")
}

// Guesses at one subject's codes are bounded across all of the subject's requests
// (limits.verify.subject), not per request: many requests do not buy more guesses.
func TestMyAccountBoundsCodeGuessesPerSubjectAcrossRequests(t *testing.T) {
	s := webtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	email := demo.ClearCustomerEmail
	// Requests filed by staff are not limited: the attacker's budget of requests is not the
	// point here, their guesses are.
	var ids []string
	for range 10 {
		id, err := s.Deps.Requests().Submit(ctx, requests.Submission{TenantID: webtest.Tenant, Type: "access", Subject: connectors.Subject{Email: email}, Channel: "post"})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids {
		_, err := webtest.AwaitCode(ctx, s.URL, email, id)
		require.NoError(t, err)
		awaitStatus(ctx, t, s, id, "identity_pending")
	}
	b := newBrowser(t, s.URL)
	_, tok := b.page("/myaccount", http.StatusOK)
	guesses := 0
	for _, id := range ids {
		for range identity.DefaultMaxAttempts {
			res, raw := b.do(http.MethodPost, "/myaccount/requests/"+id+"/verify", url.Values{"csrf_token": {tok}, "code": {"000000"}})
			if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") != "" {
				continue
			}
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "%s", raw)
			guesses++
		}
	}
	bound := s.Cfg.Limits.Verify.Subject.N
	assert.LessOrEqual(t, guesses, bound, "code guesses for one subject within the hour, over %d requests", len(ids))
	assert.Positive(t, guesses)
}

// A form larger than the cap is refused with 413 and a page that says so; nothing is recorded.
func TestMyAccountRefusesAnOversizedForm(t *testing.T) {
	s := webtest.Start(t)
	b := newBrowser(t, s.URL)
	_, tok := b.page("/myaccount", http.StatusOK)
	res, raw := b.do(http.MethodPost, "/myaccount/requests", url.Values{
		"csrf_token": {tok}, "type": {"rectification"}, "email": {demo.ClearCustomerEmail},
		"change-city": {strings.Repeat("x", int(s.Cfg.Limits.MaxFormBytes))},
	})
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", raw)
	htmlcheck.Check(t, string(raw))
	assert.Contains(t, string(raw), "That was too much to send")
	var n int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM requests`).Scan(&n))
	assert.Zero(t, n)
}
