package dashboard_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/dashboard/dashtest"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/web/htmlcheck"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// browser is a cookie-keeping client that does not follow redirects, so each answer is seen.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	res, err := b.c.Get(b.base + path)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	res, err := b.c.PostForm(b.base+path, form)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads a form's token from the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, page, _ := b.get(path)
	m := csrfRE.FindStringSubmatch(page)
	require.NotNil(b.t, m, "no CSRF token on %s", path)
	return m[1]
}

func (b *browser) login(token string) (int, string, http.Header) {
	b.t.Helper()
	return b.post("/dashboard/login", url.Values{"csrf_token": {b.csrf("/dashboard")}, "token": {token}, "name": {"Dana DPO"}})
}

// TestDashboard walks the dashboard over a whole stack: login by token, the deadline list with
// its filters and highlighting, a request's page, an approval that reaches the workflow, the
// activity stream with its CSV and chain state, the charts, roles and logout.
func TestDashboard(t *testing.T) {
	s := dashtest.Start(t)
	ctx := context.Background()
	b := newBrowser(t, s.URL)

	// Logging in: a page with a form; no CSRF, an unknown token and an intake token are refused.
	code, page, _ := b.get("/dashboard")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, `name="token"`)
	htmlcheck.Check(t, page)
	code, _, _ = b.post("/dashboard/login", url.Values{"token": {s.Tokens["salon"]["dpo"]}})
	require.Equal(t, http.StatusForbidden, code, "a login without the CSRF token")
	code, page, _ = b.login("not-a-token")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, page, "not one Lethe knows")
	code, _, _ = b.login(s.Tokens["salon"]["intake"])
	require.Equal(t, http.StatusForbidden, code, "an intake token")
	code, _, _ = b.get("/dashboard/requests")
	require.Equal(t, http.StatusSeeOther, code, "the deadline list before logging in")

	code, _, hd := b.login(s.Tokens["salon"]["dpo"])
	require.Equal(t, http.StatusSeeOther, code)
	require.Equal(t, "/dashboard/requests", hd.Get("Location"))
	cookie := strings.Join(hd.Values("Set-Cookie"), "\n")
	require.Contains(t, cookie, "lethe_dashboard=")
	require.Contains(t, cookie, "HttpOnly")
	require.Contains(t, cookie, "SameSite=Lax")
	require.Contains(t, cookie, "Path=/dashboard")
	require.NotContains(t, cookie, s.Tokens["salon"]["dpo"], "the token itself is never in the cookie")

	// The deadline list: overdue and due soon are marked; filters narrow; the other tenant's
	// requests never show.
	s.Seed(2, -3, domain.StatusInProgress)  // seed-000, 001: overdue
	s.Seed(2, 3, domain.StatusInProgress)   // seed-002, 003: due soon
	s.Seed(30, 20, domain.StatusInProgress) // seed-004 to 033
	s.Seed(1, 1, domain.StatusCompleted)    // seed-034
	erasure := s.Submit(domain.TypeErasure, connectors.Subject{Email: "dashboard.walk@example.com"})
	s.AwaitStatus(erasure, domain.StatusPendingApproval)
	// Staff reading the subject's identifiers is an event with the subject's reference.
	_, err := s.Deps.Requests().ViewSubjectIdentifiers(ctx, "salon", erasure, "api:salon/support")
	require.NoError(t, err)
	spa, err := s.Deps.Requests().Submit(ctx, submission("spa"))
	require.NoError(t, err)

	code, page, _ = b.get("/dashboard/requests")
	require.Equal(t, http.StatusOK, code)
	htmlcheck.Check(t, page)
	require.Regexp(t, `(?s)<tr class="overdue">.*?3 days overdue.*?seed-000`, page)
	require.Regexp(t, `(?s)<tr class="soon">.*?Due soon: 3 days left.*?seed-002`, page)
	require.NotContains(t, page, "seed-034", "the default list is the open requests")
	require.NotContains(t, page, spa)
	require.Contains(t, page, `rel="next"`, "35 open requests fill more than one page")
	_, page2, _ := b.get("/dashboard/requests?page=2")
	require.Contains(t, page2, "seed-033")
	require.NotContains(t, page2, "seed-000")

	_, page, _ = b.get("/dashboard/requests?due=7")
	require.Contains(t, page, "seed-001")
	require.NotContains(t, page, "seed-010", "due in 20+ days is not within 7")
	_, page, _ = b.get("/dashboard/requests?type=erasure")
	require.Contains(t, page, erasure)
	require.NotContains(t, page, "seed-")
	_, page, _ = b.get("/dashboard/requests?channel=kafka&status=any")
	require.Contains(t, page, "seed-034")
	require.NotContains(t, page, erasure, "the erasure came in through the API")
	_, page, _ = b.get("/dashboard/requests?status=pending_approval")
	require.Contains(t, page, erasure)
	require.NotContains(t, page, "seed-")

	// A request's page offers the approval; without the CSRF token it is refused.
	code, page, _ = b.get("/dashboard/requests/" + erasure)
	require.Equal(t, http.StatusOK, code)
	htmlcheck.Check(t, page)
	require.Contains(t, page, `id="do-approve"`)
	require.Contains(t, page, `id="do-deny"`)
	code, _, _ = b.post("/dashboard/requests/"+erasure+"/approve", url.Values{})
	require.Equal(t, http.StatusForbidden, code)
	code, page, _ = b.post("/dashboard/requests/"+erasure+"/deny", url.Values{"csrf_token": {b.csrf("/dashboard/requests/" + erasure)}})
	require.Equal(t, http.StatusUnprocessableEntity, code, "a denial needs a reason")
	require.Contains(t, page, "Give a reason")
	code, _, hd = b.post("/dashboard/requests/"+erasure+"/approve", url.Values{"csrf_token": {b.csrf("/dashboard/requests/" + erasure)}})
	require.Equal(t, http.StatusSeeOther, code)
	require.Equal(t, "/dashboard/requests/"+erasure+"?done=approve", hd.Get("Location"))
	st := s.Await(erasure)
	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Equal(t, "Dana DPO (dashboard:salon/dpo)", st.ApprovedBy, "the approval went through the workflow's update")
	_, page, _ = b.get("/dashboard/requests/" + erasure + "?done=approve")
	require.Contains(t, page, "Approved: the request goes ahead.")
	require.Regexp(t, `(?s)id="timeline".*request.in_progress</strong> <span class="note">by Dana DPO \(dashboard:salon/dpo\)`, page)
	require.NotContains(t, page, `id="do-approve"`, "a completed request offers no approval")
	code, _, _ = b.get("/dashboard/requests/" + spa)
	require.Equal(t, http.StatusNotFound, code, "another tenant's request")

	// The activity stream: filtered by request and by actor, as CSV, and the chain verified.
	code, page, _ = b.get("/dashboard/activity?request=" + erasure)
	require.Equal(t, http.StatusOK, code)
	htmlcheck.Check(t, page)
	require.Contains(t, page, "Audit chain verified")
	require.Contains(t, page, `<td data-label="Actor">Dana DPO (dashboard:salon/dpo)</td><td data-label="Action">request.in_progress</td>`)
	require.NotContains(t, page, "seed-")
	_, page, _ = b.get("/dashboard/activity?subject=dashboard.walk@example.com")
	require.Contains(t, page, "request.subject_viewed", "a subject is found by address, through its reference")
	require.NotContains(t, page, "request.in_progress")
	require.NotContains(t, page, "dashboard.walk@example.com</", "the address is not shown back as data")
	_, page, _ = b.get("/dashboard/activity?actor=" + url.QueryEscape("Dana DPO (dashboard:salon/dpo)"))
	require.Contains(t, page, "request.in_progress")
	require.NotContains(t, page, "request.received")
	today := time.Now().UTC().Format(time.DateOnly)
	_, page, _ = b.get("/dashboard/activity?request=" + erasure + "&since=" + today + "&until=" + today)
	require.Contains(t, page, "request.in_progress", "a period that ends today holds today's events")
	_, page, _ = b.get("/dashboard/activity?request=" + erasure + "&until=" + time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly))
	require.Contains(t, page, "No event matches.")
	code, _, _ = b.get("/dashboard/activity?since=yesterday")
	require.Equal(t, http.StatusBadRequest, code)

	events, err := s.Deps.Store.Audit().List(ctx, store.AuditFilter{TenantID: "salon", RequestID: erasure, Limit: 1000})
	require.NoError(t, err)
	code, body, hd := b.get("/dashboard/activity.csv?request=" + erasure)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "text/csv; charset=utf-8", hd.Get("Content-Type"))
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, "occurred_at", rows[0][1])
	require.Len(t, rows, len(events)+1, "one row per event of the request")
	for _, r := range rows[1:] {
		require.Equal(t, erasure, r[4])
	}
	code, _, hd = b.post("/dashboard/activity/verify", url.Values{"csrf_token": {b.csrf("/dashboard/activity")}})
	require.Equal(t, http.StatusSeeOther, code)
	_, page, _ = b.get(hd.Get("Location"))
	require.Contains(t, page, "verified just now")

	// The charts: SVG in the page, a row per type.
	code, page, _ = b.get("/dashboard/charts")
	require.Equal(t, http.StatusOK, code)
	htmlcheck.Check(t, page)
	require.Equal(t, 3, strings.Count(page, "<svg "))
	require.Regexp(t, `(?s)id="by-type".*<td>erasure</td><td>1</td><td>1</td>`, page)

	// A breach: each clock counts down (the script runs from this origin only) and the report's
	// missing elements are listed.
	breach := s.OpenBreach()
	require.Eventually(t, func() bool {
		code, page, _ = b.get("/dashboard/breaches/" + breach)
		return code == http.StatusOK && strings.Contains(page, "data-due=")
	}, time.Minute, 100*time.Millisecond, "the breach page with a running clock")
	htmlcheck.CheckScripts(t, page, "/dashboard/countdown.js")
	require.Regexp(t, `class="countdown" data-due="[^"]+">(\d+ d )?\d\d h \d\d min \d\d s left<`, page)
	require.Regexp(t, `(?s)id="missing">.*<li>`, page)
	require.Contains(t, page, `<script src="/dashboard/countdown.js" defer></script>`)
	require.Eventually(t, func() bool {
		_, page, _ = b.get("/dashboard/breaches")
		return strings.Contains(page, breach)
	}, time.Minute, 100*time.Millisecond, "the register lists the breach")
	_, _, hd = b.get("/dashboard/countdown.js")
	require.Contains(t, hd.Get("Content-Security-Policy"), "script-src 'self'")

	// Support sees the deadlines and may act, but not the audit trail (listAudit is dpo, admin).
	support := newBrowser(t, s.URL)
	support.login(s.Tokens["salon"]["support"])
	_, page, _ = support.get("/dashboard/requests")
	require.Contains(t, page, "Deadlines")
	require.NotContains(t, page, "/dashboard/activity\"")
	code, _, _ = support.get("/dashboard/activity")
	require.Equal(t, http.StatusForbidden, code)

	// Logging out ends the session.
	code, _, hd = b.post("/dashboard/logout", url.Values{"csrf_token": {b.csrf("/dashboard/requests")}})
	require.Equal(t, http.StatusSeeOther, code)
	require.Contains(t, hd.Get("Set-Cookie"), "Max-Age=0")
	code, _, _ = b.get("/dashboard/requests")
	require.Equal(t, http.StatusSeeOther, code)
}

func submission(tenant string) requests.Submission {
	return requests.Submission{TenantID: tenant, Type: domain.TypeAccess, Subject: connectors.Subject{Email: "other.tenant@example.com"}, IdentityVerified: true, Channel: "api"}
}
