package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// Tokens of the two tenants' roles, as configured in the stack.
var tokens = map[string]string{}

func tok(tenant, role string) string { return tokens[tenant+"/"+role] }

const (
	assertionKey = "salon-assertion-key-0123456789abcdef"
	signingKey   = "api-signing-key-0123456789abcdef"
)

// stack is a whole Lethe for the API tests (see teststack), with the worker, the bridge and
// the demo salon's connector running and /v1 mounted on its server. Two tenants: salon (with
// the demo data) and spa.
type stack struct {
	*teststack.Stack
	t   *testing.T
	svc *requests.Service
	doc *openapi3.T
	rt  routers.Router
	// mail is the worker's mail sender, which a test can swap for a while.
	mail *switchedMail
}

// switchedMail sends through next, which a test may replace.
type switchedMail struct {
	mu   sync.Mutex
	next mail.Sender
}

func (m *switchedMail) Send(ctx context.Context, n mail.Notice) (string, error) {
	m.mu.Lock()
	next := m.next
	m.mu.Unlock()
	return next.Send(ctx, n)
}

// use sends through next until restore is called.
func (m *switchedMail) use(next mail.Sender) (restore func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.next
	m.next = next
	return func() { m.mu.Lock(); defer m.mu.Unlock(); m.next = prev }
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	env := map[string]string{"API_ASSERTION_KEY": assertionKey}
	var yamlTokens = map[string]string{}
	for _, tenant := range []string{"salon", "spa"} {
		var b strings.Builder
		for _, role := range config.Roles {
			name := "API_TOKEN_" + strings.ToUpper(tenant+"_"+role)
			tokens[tenant+"/"+role] = tenant + "-" + role + "-token-" + testenv.Suffix()
			env[name] = tokens[tenant+"/"+role]
			b.WriteString("\n      - {role: " + role + ", env: " + name + "}")
		}
		yamlTokens[tenant] = b.String()
	}
	opt := teststack.Options{
		Name: "api",
		Tenants: `
  - id: salon
    name: Salon Example
    regime: gdpr
    country: DE
    time_zone: Europe/Berlin
    contact_email: privacy@salon.example
    assertion_key: {env: API_ASSERTION_KEY}
    policy: {manual_approval: [erasure, rectification, restriction]}
    tokens:` + yamlTokens["salon"] + `
  - id: spa
    name: Spa Example
    regime: gdpr
    country: FR
    contact_email: privacy@spa.example
    assertion_key: {env: API_ASSERTION_KEY}
    tokens:` + yamlTokens["spa"],
		Env:         env,
		SigningKey:  signingKey,
		Listen:      true,
		MailboxSize: 1000,
	}
	s := &stack{Stack: teststack.New(t, opt), t: t}
	s.mail = &switchedMail{next: s.Deps.Mail}
	s.Deps.Mail = s.mail // the worker's
	s.RunAll()

	s.svc = s.Deps.Requests()
	srv := api.New(s.Log, s.Deps.Checkers()...)
	// Limits are tested on their own server; here they must not get in the way.
	require.NoError(t, srv.MountV1(api.V1Options{Requests: s.svc, Breaches: s.Deps.Breaches(), Reports: s.Deps.BreachReports(), Log: s.Log}))
	s.Serve(srv)

	var err error
	s.doc, err = api.LoadOpenAPI(ctx)
	require.NoError(t, err)
	s.rt, err = gorillamux.NewRouter(s.doc)
	require.NoError(t, err)
	return s
}

// serve mounts /v1 with other options on a server of its own (same stack behind it).
func (s *stack) serve(opt api.V1Options) string {
	s.t.Helper()
	if opt.Requests == nil {
		opt.Requests = s.svc
	}
	h, err := api.NewV1(opt)
	require.NoError(s.t, err)
	hs := httptest.NewServer(h)
	s.t.Cleanup(hs.Close)
	return hs.URL
}

// response is one API answer, checked against the OpenAPI document.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body %s", r.body)
	return m
}

func (r response) code(t *testing.T) string {
	t.Helper()
	c, _ := r.json(t)["code"].(string)
	return c
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// call sends a request to base (the stack's server when "") and checks the answer against the
// document: its status must be documented for the route, and a JSON body must match.
func (s *stack) call(t *testing.T, base, method, path, token string, body any) response {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		raw, err = json.Marshal(b)
		require.NoError(t, err)
	}
	return s.send(t, base, method, path, token, "application/json", raw)
}

func (s *stack) send(t *testing.T, base, method, path, token, contentType string, raw []byte) response {
	t.Helper()
	if base == "" {
		base = s.URL
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(raw))
	require.NoError(t, err)
	if raw != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := noRedirect.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	r := response{status: res.StatusCode, header: res.Header, body: out}
	s.checkDocumented(t, req, r)
	return r
}

var (
	validationMu sync.Mutex
)

func (s *stack) checkDocumented(t *testing.T, req *http.Request, r response) {
	t.Helper()
	if r.status >= 500 {
		t.Errorf("%s %s answered %d: %s", req.Method, req.URL.Path, r.status, r.body)
	}
	document := isDocument(r.header.Get("Content-Type"))
	if !document {
		var e map[string]any
		require.NoError(t, json.Unmarshal(r.body, &e), "%s %s: body is not JSON: %s", req.Method, req.URL.Path, r.body)
		if r.status >= 400 {
			require.NotEmpty(t, e["code"], "error without code: %s", r.body)
			require.NotEmpty(t, e["message"], "error without message: %s", r.body)
		}
	}
	route, params, err := s.rt.FindRoute(req)
	if err != nil {
		require.Contains(t, []int{404, 405}, r.status, "%s %s is not documented", req.Method, req.URL.Path)
		return
	}
	validationMu.Lock()
	defer validationMu.Unlock()
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: document},
	}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), in), "%s %s → %d %s", req.Method, req.URL.Path, r.status, r.body)
}

// isDocument reports whether a content type is a download (an export package, a breach
// report) rather than a JSON answer.
func isDocument(contentType string) bool {
	for _, t := range []string{"application/zip", "application/pdf", "text/html"} {
		if strings.HasPrefix(contentType, t) {
			return true
		}
	}
	return false
}

// await polls the request until cond holds (the workflow moves on its own).
func (s *stack) await(t *testing.T, tenant, id string, cond func(st map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := s.call(t, "", "GET", "/v1/requests/"+id, tok(tenant, "support"), nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		st := r.json(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s never reached the expected state; last %s", id, r.body)
		}
		time.Sleep(50 * time.Millisecond) // polling the workflow, not waiting out a timer
	}
}

func status(want string) func(map[string]any) bool {
	return func(st map[string]any) bool { return st["status"] == want }
}

var codeLine = regexp.MustCompile(`(?m)^\s{4}(\d{6})\s*$`)

// latestCode is the code of the newest verification email for request id.
func (s *stack) latestCode(t *testing.T, to, id string) string {
	t.Helper()
	for _, m := range s.Mailbox.Messages(to) {
		if m.Kind == mail.KindVerificationCode && m.RequestID == id {
			if c := codeLine.FindStringSubmatch(m.Text); c != nil {
				return c[1]
			}
		}
	}
	return ""
}

// submit files a request as the salon's host app and returns its id.
func (s *stack) submit(t *testing.T, body map[string]any) string {
	t.Helper()
	r := s.call(t, "", "POST", "/v1/requests", tok("salon", "intake"), body)
	require.Equal(t, 201, r.status, "%s", r.body)
	return r.json(t)["request_id"].(string)
}

func email(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", ".", "_", ".").Replace(t.Name())) + "." + testenv.Suffix() + "@example.com"
}
