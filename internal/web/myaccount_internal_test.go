package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/web/htmlcheck"
)

// fake is the request service as the pages see it, for tests of the pages' own rules
// (CSRF, the request cookie, error words); the real stack is exercised in myaccount_test.go.
type fake struct {
	mu        sync.Mutex
	submitted []requests.Submission
	submitErr error
	code      string
	verifyErr error
	resendErr error
	resent    int
	channels  []string // the channel of each resend
	delivery  *requests.CodeDelivery
	states    map[string]domain.RequestState
	zip       []byte
}

func (f *fake) Submit(_ context.Context, sub requests.Submission) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitErr != nil {
		return "", f.submitErr
	}
	f.submitted = append(f.submitted, sub)
	id := fmt.Sprintf("R-TEST%d", len(f.submitted))
	f.states[id] = domain.RequestState{RequestID: id, TenantID: sub.TenantID, Type: sub.Type, Status: domain.StatusIdentityPending, ReceivedAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	return id, nil
}

func (f *fake) Get(_ context.Context, tenant, id string) (domain.RequestState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.states[id]
	if !ok || st.TenantID != tenant {
		return st, requests.ErrNotFound
	}
	return st, nil
}

func (f *fake) VerifyCode(_ context.Context, tenant, id, code string) error {
	if f.verifyErr != nil {
		return f.verifyErr
	}
	if _, err := f.Get(context.Background(), tenant, id); err != nil {
		return err
	}
	if code != f.code {
		return requests.ErrCodeWrong
	}
	return nil
}

func (f *fake) ResendCode(_ context.Context, _, _, channel string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resent++
	f.channels = append(f.channels, channel)
	return f.resendErr
}

func (f *fake) Delivery(_ context.Context, tenant, id string) (requests.CodeDelivery, error) {
	if _, err := f.Get(context.Background(), tenant, id); err != nil {
		return requests.CodeDelivery{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delivery == nil {
		return requests.CodeDelivery{Channel: "email", CanEmail: true}, nil
	}
	return *f.delivery, nil
}

func (f *fake) ExportLink(_ context.Context, tenant, id string) (string, time.Time, error) {
	st, err := f.Get(context.Background(), tenant, id)
	if err != nil || st.Export == nil {
		return "", time.Time{}, requests.ErrNotFound
	}
	return "http://lethe.test/v1/exports?token=tok-" + id, time.Now().Add(time.Hour), nil
}

func (f *fake) OpenExport(_ context.Context, token string) (io.ReadCloser, string, string, error) {
	if !strings.HasPrefix(token, "tok-") {
		return nil, "", "", errors.New("bad token")
	}
	return io.NopCloser(bytes.NewReader(f.zip)), strings.TrimPrefix(token, "tok-") + ".zip", "abc123", nil
}

type client struct {
	t    *testing.T
	srv  *httptest.Server
	http *http.Client
}

func newFakeSite(t *testing.T, f *fake, logs io.Writer) *client {
	t.Helper()
	if f.states == nil {
		f.states = map[string]domain.RequestState{}
	}
	if logs == nil {
		logs = io.Discard
	}
	h := newHandler(f, "salon", "Salon Example", "privacy@salon.example", "Europe/Berlin", Options{
		SigningKey: []byte("test-signing-key-0123456789abcdef"),
		Log:        slog.New(slog.NewTextHandler(logs, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newClient(t, srv)
}

func newClient(t *testing.T, srv *httptest.Server) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, srv: srv, http: &http.Client{
		Jar: jar,
		// Redirects are checked by the tests, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	res, err := c.http.Get(c.srv.URL + path)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res, string(b)
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// What a browser sends with a form posted from one of our own pages.
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res, string(b)
}

// token loads a page and returns its form's CSRF token.
func (c *client) token(path string) string {
	c.t.Helper()
	res, body := c.get(path)
	require.Equal(c.t, http.StatusOK, res.StatusCode, body)
	tok := htmlcheck.Inputs(c.t, body)[csrfField]
	require.NotEmpty(c.t, tok)
	return tok
}

func submitForm(tok string, kv ...string) url.Values {
	v := url.Values{csrfField: {tok}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// verified walks a request to the status page: submit, verify with the right code.
func (c *client) verified(f *fake) string {
	c.t.Helper()
	f.code = "123456"
	res, body := c.post("/myaccount/requests", submitForm(c.token("/myaccount"), "type", "access", "email", "ada@example.com"))
	require.Equal(c.t, http.StatusSeeOther, res.StatusCode, body)
	verify := res.Header.Get("Location")
	res, body = c.post(verify, submitForm(c.token(verify), "code", "123 456"))
	require.Equal(c.t, http.StatusSeeOther, res.StatusCode, body)
	return res.Header.Get("Location")
}

func TestStartPageIsAccessibleAndSetsTheCSRFCookie(t *testing.T) {
	c := newFakeSite(t, &fake{}, nil)
	res, body := c.get("/myaccount")
	require.Equal(t, http.StatusOK, res.StatusCode)
	htmlcheck.Check(t, body)
	assert.Contains(t, body, "<fieldset")
	assert.Contains(t, body, "<legend>")
	for _, typ := range domain.RequestTypes {
		assert.Contains(t, body, `value="`+typ+`"`, "every right is offered")
	}
	// Only the email code is proven: the page must not promise that a typed phone or customer
	// number is matched against what the business holds.
	assert.NotContains(t, body, "must match what we hold")
	assert.Contains(t, body, "Our staff check it with you before using it")
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	var csrf *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == csrfCookie {
			csrf = ck
		}
	}
	require.NotNil(t, csrf)
	assert.True(t, csrf.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, csrf.SameSite)

	// The stylesheet is served by the handler itself: no external assets.
	res, css := c.get("/myaccount/style.css")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, css, ":focus-visible")
	assert.NotContains(t, body, "http://")
	assert.NotContains(t, body, "https://")
}

func TestFormsWithoutAValidCSRFTokenAreRefused(t *testing.T) {
	f := &fake{}
	c := newFakeSite(t, f, nil)
	tok := c.token("/myaccount")
	good := submitForm(tok, "type", "access", "email", "ada@example.com")

	for name, form := range map[string]url.Values{
		"no token":    submitForm("", "type", "access", "email", "ada@example.com"),
		"wrong token": submitForm(tok[:len(tok)-2]+"xx", "type", "access", "email", "ada@example.com"),
	} {
		res, body := c.post("/myaccount/requests", form)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, name)
		assert.Contains(t, body, "Please try again", name)
	}
	// Another browser's token is worthless with this browser's cookie.
	other := newClient(t, c.srv)
	res, _ := other.post("/myaccount/requests", good)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "token without its cookie")
	res, _ = other.post("/myaccount/requests/R-TEST1/verify", submitForm(tok, "code", "1"))
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "verify needs the token too")
	res, _ = other.post("/myaccount/requests/R-TEST1/resend", submitForm(tok))
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "resend needs the token too")

	// A cross-site post is refused by the browser's own signals even with a valid token.
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/myaccount/requests", strings.NewReader(good.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := c.http.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "cross-site post")

	require.Empty(t, f.submitted, "nothing refused was submitted")
	res, _ = c.post("/myaccount/requests", good)
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Len(t, f.submitted, 1)
	assert.Equal(t, 0, f.resent, "the workflow sends the first code, not the page")
}

func TestSubmitRedirectsToVerificationAndShowsErrorsByField(t *testing.T) {
	f := &fake{}
	c := newFakeSite(t, f, nil)
	tok := c.token("/myaccount")

	res, body := c.post("/myaccount/requests", submitForm(tok, "email", "not an address", "phone", "0151 1234"))
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	htmlcheck.Check(t, body)
	assert.Contains(t, body, "<title>Error: ")
	assert.Contains(t, body, `href="#type-access"`)
	assert.Contains(t, body, "Choose what you would like us to do")
	assert.Contains(t, body, "Enter an email address in the correct format")
	assert.Contains(t, body, "with its country code")
	assert.Contains(t, body, `id="email" name="email" value="not an address"`, "what was typed is kept")
	assert.Contains(t, body, `aria-invalid="true"`)

	res, body = c.post("/myaccount/requests", submitForm(tok, "type", "rectification", "email", "ada@example.com"))
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	assert.Contains(t, body, "Give at least one detail to correct")
	htmlcheck.Check(t, body)

	res, _ = c.post("/myaccount/requests", submitForm(tok, "type", "rectification", "email", "ada@example.com",
		"phone", "+44 7700 900123", "customer_id", "DEMO-0004", "change-city", "Eastfold"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/myaccount/requests/R-TEST1/verify", res.Header.Get("Location"))
	require.Len(t, f.submitted, 1)
	sub := f.submitted[0]
	assert.Equal(t, "myaccount", sub.Channel)
	assert.Equal(t, "salon", sub.TenantID)
	assert.False(t, sub.IdentityVerified, "the email code proves identity, not the form")
	assert.Equal(t, "+447700900123", sub.Subject.Phone)
	assert.Equal(t, "DEMO-0004", sub.Subject.CustomerID)
	assert.Equal(t, map[string]string{"city": "Eastfold"}, sub.Changes)
}

func TestVerifyPageShowsOnlyThatACodeWasSent(t *testing.T) {
	f := &fake{}
	c := newFakeSite(t, f, nil)
	res, body := c.post("/myaccount/requests", submitForm(c.token("/myaccount"), "type", "erasure", "email", "ada@example.com"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)

	// Anyone holding the id sees the same page as for an id that does not exist.
	stranger := newClient(t, c.srv)
	res, real := stranger.get("/myaccount/requests/R-TEST1/verify")
	require.Equal(t, http.StatusOK, res.StatusCode)
	htmlcheck.Check(t, real)
	_, none := stranger.get("/myaccount/requests/R-NOSUCH/verify")
	assert.Equal(t, strings.ReplaceAll(real, "R-TEST1", "X"), strings.ReplaceAll(none, "R-NOSUCH", "X"), "the page does not depend on the request")
	assert.NotContains(t, real, "ada@example.com")
	assert.NotContains(t, real, "Delete your data", "not even the type")

	// The status page is refused to a browser that did not verify.
	res, body = stranger.get("/myaccount/requests/R-TEST1")
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, body, "Open this request in the browser you used")
	res, _ = stranger.get("/myaccount/requests/R-TEST1/export")
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}

func TestCodeErrorsAreExplainedInPlainWords(t *testing.T) {
	f := &fake{code: "123456"}
	c := newFakeSite(t, f, nil)
	res, _ := c.post("/myaccount/requests", submitForm(c.token("/myaccount"), "type", "access", "email", "ada@example.com"))
	verify := res.Header.Get("Location")
	tok := c.token(verify)

	cases := []struct {
		code   string
		err    error
		status int
		words  string
	}{
		{"", nil, http.StatusUnprocessableEntity, "Enter the code from the email"},
		{"654321", nil, http.StatusUnprocessableEntity, "That code is not right"},
		{"123456", requests.ErrCodeExpired, http.StatusUnprocessableEntity, "This code has expired. Ask for a new code"},
		{"123456", requests.ErrTooManyAttempts, http.StatusTooManyRequests, "wrong code too many times. Ask for a new code"},
		{"123456", fmt.Errorf("verifying: %w", requests.ErrCodeUsed), http.StatusUnprocessableEntity, "already been used. Ask for a new code"},
		{"123456", requests.ErrNoCodeSent, http.StatusUnprocessableEntity, "no code waiting for this request. Ask for a new code"},
		{"123456", requests.ErrAlreadyVerified, http.StatusConflict, "not waiting for a code"},
	}
	for _, tc := range cases {
		f.verifyErr = tc.err
		res, body := c.post(verify, submitForm(tok, "code", tc.code))
		assert.Equal(t, tc.status, res.StatusCode, tc.words)
		if tc.status == http.StatusTooManyRequests {
			assert.NotEmpty(t, res.Header.Get("Retry-After"), tc.words)
		}
		assert.Contains(t, body, tc.words)
		assert.Contains(t, body, `href="#code"`, "the summary links to the field")
		assert.Contains(t, body, `id="code-error"`)
		htmlcheck.Check(t, body)
		assert.Empty(t, res.Header.Values("Set-Cookie"), "no request cookie without the right code")
	}
	// A code for an id that does not exist reads as a wrong code.
	f.verifyErr = nil
	res, body := c.post("/myaccount/requests/R-NOSUCH/verify", submitForm(tok, "code", "123456"))
	assert.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	assert.Contains(t, body, "That code is not right")

	// Resend: a new code, and the verify page says so.
	res, _ = c.post(verify[:len(verify)-len("/verify")]+"/resend", submitForm(tok))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, 1, f.resent, "only the new code the subject asked for")
	_, body = c.get(res.Header.Get("Location"))
	assert.Contains(t, body, "We have sent you a new code")

	// Too many codes: said in the page. An unknown id: answered as if sent.
	f.resendErr = requests.ErrTooManyCodes
	res, body = c.post(verify[:len(verify)-len("/verify")]+"/resend", submitForm(tok))
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	assert.Contains(t, body, "We have sent several codes already")
	f.resendErr = requests.ErrNotFound
	res, _ = c.post("/myaccount/requests/R-NOSUCH/resend", submitForm(tok))
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/myaccount/requests/R-NOSUCH/verify?sent=1", res.Header.Get("Location"))
}

func TestVerifiedBrowserSeesStatusStepsDueDateAndDownload(t *testing.T) {
	f := &fake{zip: []byte("PK\x03\x04 zip bytes")}
	c := newFakeSite(t, f, nil)
	status := c.verified(f)
	require.Equal(t, "/myaccount/requests/R-TEST1", status)

	u, _ := url.Parse(c.srv.URL + status)
	var bound *http.Cookie
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == requestCookie {
			bound = ck
		}
	}
	require.NotNil(t, bound, "verifying binds the browser to the request")

	at := func(h int) time.Time { return time.Date(2026, 3, 2, h, 0, 0, 0, time.UTC) }
	f.states["R-TEST1"] = domain.RequestState{
		RequestID: "R-TEST1", TenantID: "salon", Type: domain.TypeAccess, Status: domain.StatusInProgress,
		ReceivedAt: at(9), DueDate: "2026-04-02",
		Steps: []domain.Step{
			{At: at(9), Status: domain.StatusReceived, Note: "received via myaccount"},
			{At: at(9), Status: domain.StatusIdentityPending},
			{At: at(10), Status: domain.StatusIdentityPending, Note: "identity verified by email_code"},
			{At: at(11), Status: domain.StatusInProgress},
		},
	}
	res, body := c.get(status)
	require.Equal(t, http.StatusOK, res.StatusCode)
	htmlcheck.Check(t, body)
	assert.Contains(t, body, "Get a copy of your data")
	assert.Contains(t, body, `aria-live="polite"`)
	assert.Contains(t, body, "In progress")
	assert.Contains(t, body, `<time datetime="2026-04-02">Thursday 2 April 2026</time>`)
	for _, step := range []string{"We received your request", "We emailed you a code", "You confirmed it is you", "We started working on your request"} {
		assert.Contains(t, body, step)
	}
	assert.Contains(t, body, "Monday 2 March 2026, 12:00", "times in the tenant's zone (Berlin)")
	assert.NotContains(t, body, "email_code", "no internal words")
	assert.NotContains(t, body, "/export", "no download before the export exists")

	st := f.states["R-TEST1"]
	st.Status = domain.StatusCompleted
	st.Export = &domain.ExportInfo{URI: "file:///x.zip", SHA256: "abc123", Bytes: 2048}
	f.states["R-TEST1"] = st
	_, body = c.get(status)
	assert.Contains(t, body, `href="/myaccount/requests/R-TEST1/export"`)
	assert.Contains(t, body, "2 KB")
	res, zip := c.get(status + "/export")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/zip", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Disposition"), `filename="R-TEST1.zip"`)

	// Once the export expired, the page says the copy is gone instead of offering it.
	st.Export = nil
	f.states["R-TEST1"] = st
	_, body = c.get(status)
	assert.NotContains(t, body, "/export")
	htmlcheck.Check(t, body)
	assert.Contains(t, body, "The copy of your data has been deleted")
	assert.Equal(t, string(f.zip), zip)
}

func TestRequestCookieOpensOnlyItsOwnRequest(t *testing.T) {
	f := &fake{}
	c := newFakeSite(t, f, nil)
	status := c.verified(f)
	u, _ := url.Parse(c.srv.URL + status)
	value := ""
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == requestCookie {
			value = ck.Value
		}
	}
	require.NotEmpty(t, value)
	f.states["R-OTHER"] = domain.RequestState{RequestID: "R-OTHER", TenantID: "salon", Status: domain.StatusCompleted}

	try := func(path, cookie string) int {
		req, _ := http.NewRequest(http.MethodGet, c.srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: requestCookie, Value: cookie})
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusOK, try(status, value))
	assert.Equal(t, http.StatusForbidden, try("/myaccount/requests/R-OTHER", value), "another request")
	exp, sig, _ := strings.Cut(value, ".")
	assert.Equal(t, http.StatusForbidden, try(status, exp+"1."+sig), "a later expiry")
	assert.Equal(t, http.StatusForbidden, try(status, exp+"."+strings.Repeat("A", len(sig))), "a forged signature")
	assert.Equal(t, http.StatusForbidden, try(status, "garbage"))

	// A cookie signed for another tenant with the same key opens nothing here.
	other := &handler{tenant: "other", keys: deriveKeys([]byte("test-signing-key-0123456789abcdef")), now: time.Now, base: "/myaccount"}
	w := httptest.NewRecorder()
	other.bindRequest(w, "R-TEST1")
	foreign := w.Result().Cookies()[0].Value
	assert.Equal(t, http.StatusForbidden, try(status, foreign), "another tenant's cookie")

	// An expired binding no longer opens the request.
	old := &handler{tenant: "salon", keys: deriveKeys([]byte("test-signing-key-0123456789abcdef")), base: "/myaccount",
		now: func() time.Time { return time.Now().Add(-sessionLifetime - time.Hour) }}
	w = httptest.NewRecorder()
	old.bindRequest(w, "R-TEST1")
	assert.Equal(t, http.StatusForbidden, try(status, w.Result().Cookies()[0].Value), "expired")
}

func TestCookieAttributes(t *testing.T) {
	f := &fake{}
	c := newFakeSite(t, f, nil)
	f.code = "1"
	res, _ := c.post("/myaccount/requests", submitForm(c.token("/myaccount"), "type", "access", "email", "ada@example.com"))
	verify := res.Header.Get("Location")
	res, _ = c.post(verify, submitForm(c.token(verify), "code", "1"))
	var ck *http.Cookie
	for _, x := range res.Cookies() {
		if x.Name == requestCookie {
			ck = x
		}
	}
	require.NotNil(t, ck)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	assert.Equal(t, "/myaccount/requests/R-TEST1", ck.Path, "sent only to that request's pages")
	assert.Positive(t, ck.MaxAge)
}

func TestFailuresAreLoggedWithoutPersonalData(t *testing.T) {
	var logs bytes.Buffer
	f := &fake{submitErr: errors.New(`recording the request: duplicate key (email)=(Ada.Lovelace@Example.com), phone +447700900123`)}
	c := newFakeSite(t, f, &logs)
	res, body := c.post("/myaccount/requests", submitForm(c.token("/myaccount"), "type", "access",
		"email", "ada.lovelace@example.com", "phone", "+44 7700 900123"))
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, body, "Please try again in a few minutes")
	assert.Contains(t, logs.String(), "myaccount: submit failed")
	assert.NotContains(t, strings.ToLower(logs.String()), "lovelace")
	assert.NotContains(t, logs.String(), "7700900123")
}

func TestUnknownPathsAndBadIDs(t *testing.T) {
	c := newFakeSite(t, &fake{}, nil)
	for _, p := range []string{"/myaccount/nope", "/myaccount/requests/bad%20id/verify", "/myaccount/requests/" + strings.Repeat("x", 65)} {
		res, body := c.get(p)
		assert.Equal(t, http.StatusNotFound, res.StatusCode, p)
		htmlcheck.Check(t, body)
	}
}

// A deployment with several tenants mounts each one's pages under its own base path.
func TestPagesLiveUnderTheConfiguredBase(t *testing.T) {
	f := &fake{states: map[string]domain.RequestState{}, code: "1"}
	h := newHandler(f, "acme", "Acme", "", "UTC", Options{SigningKey: []byte("test-signing-key-0123456789abcdef"), Base: "/myaccount/acme"})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := newClient(t, srv)
	_, body := c.get("/myaccount/acme")
	assert.Contains(t, body, `action="/myaccount/acme/requests"`)
	assert.Contains(t, body, `href="/myaccount/acme/style.css"`)
	res, _ := c.post("/myaccount/acme/requests", submitForm(c.token("/myaccount/acme"), "type", "access", "email", "ada@example.com"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	verify := res.Header.Get("Location")
	require.Equal(t, "/myaccount/acme/requests/R-TEST1/verify", verify)
	res, _ = c.post(verify, submitForm(c.token(verify), "code", "1"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, _ = c.get(res.Header.Get("Location"))
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "acme", f.submitted[0].TenantID)
}

// A request whose workflow closed says so in plain words, never that it is still being worked
// on, and shows none of the reason meant for staff.
func TestClosedRequestSaysItStopped(t *testing.T) {
	f := &fake{}
	c := newFakeSite(t, f, nil)
	status := c.verified(f)
	f.states["R-TEST1"] = domain.RequestState{
		RequestID: "R-TEST1", TenantID: "salon", Type: domain.TypeAccess, Status: domain.StatusFailed,
		ReceivedAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), DueDate: "2026-04-02", Closed: true,
		FailureReason: "Lethe stopped working on this request because its workflow was terminated in Temporal",
		Steps:         []domain.Step{{At: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Status: domain.StatusReceived}},
	}
	res, body := c.get(status)
	require.Equal(t, http.StatusOK, res.StatusCode)
	htmlcheck.Check(t, body)
	assert.Contains(t, body, "your request stopped. Our team has been told and will contact you")
	assert.NotContains(t, body, "will try again")
	assert.NotContains(t, body, "Temporal", "the staff reason is not shown to the subject")
}

// Where a phone number is on record and the tenant texts, the page offers a text instead;
// once a code went by text it says so, showing the number's last two digits only, and offers
// email back. A text that cannot be sent is explained in the page.
func TestVerifyPageOffersATextAndSaysWhereTheCodeWent(t *testing.T) {
	f := &fake{}
	c := newFakeSite(t, f, nil)
	res, _ := c.post("/myaccount/requests", submitForm(c.token("/myaccount"), "type", "access", "email", "ada@example.com", "phone", "+4915112345667"))
	verify := res.Header.Get("Location")
	resend := strings.TrimSuffix(verify, "/verify") + "/resend"

	_, body := c.get(verify)
	htmlcheck.Check(t, body)
	assert.Contains(t, body, "we have emailed you a code")
	assert.NotContains(t, body, "Text me a code instead", "no text offered where none can be sent")

	f.delivery = &requests.CodeDelivery{Channel: "email", CanEmail: true, CanText: true, PhoneEnding: "67"}
	_, body = c.get(verify)
	htmlcheck.Check(t, body)
	assert.Contains(t, body, "Text me a code instead")
	assert.Contains(t, body, "ending in 67")
	assert.NotContains(t, body, "12345667", "only the last two digits")

	res, _ = c.post(resend, submitForm(c.token(verify), "channel", "sms"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, []string{"sms"}, f.channels, "the resend asked for a text")

	f.delivery = &requests.CodeDelivery{Channel: "sms", CanEmail: true, CanText: true, PhoneEnding: "67"}
	_, body = c.get(res.Header.Get("Location"))
	htmlcheck.Check(t, body)
	assert.Contains(t, body, "We have sent you a new code")
	assert.Contains(t, body, "Check your phone")
	assert.Contains(t, body, "we have sent you a code by text to the number ending in 67")
	assert.Contains(t, body, "Code from the text")
	assert.Contains(t, body, "Email me a code instead")
	assert.NotContains(t, body, "12345667")

	for err, words := range map[error]string{
		requests.ErrNoPhone:     "We have no phone number for this request",
		requests.ErrNoTexts:     "We cannot send codes by text",
		requests.ErrTextRefused: "We could not send a text to this number",
		requests.ErrChannel:     "Choose how to get the code",
	} {
		f.resendErr = err
		res, body = c.post(resend, submitForm(c.token(verify), "channel", "sms"))
		assert.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, words)
		assert.Contains(t, body, words)
		htmlcheck.Check(t, body)
	}
}
