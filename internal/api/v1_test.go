package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/links"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/requests"
)

// One stack serves every API test; each subtest uses its own subjects and requests.
func TestAPI(t *testing.T) {
	s := newStack(t)
	t.Run("DocumentedRoutesAreServed", s.testDocumentedRoutes)
	t.Run("Authentication", s.testAuthentication)
	t.Run("BadInput", s.testBadInput)
	t.Run("SubmitAndGet", s.testSubmitAndGet)
	t.Run("ReceivedAtStaffOnly", s.testReceivedAt)
	t.Run("CrossTenant", s.testCrossTenant)
	t.Run("VerificationCode", s.testVerificationCode)
	t.Run("VerificationCodeExpires", s.testCodeExpires)
	t.Run("VerificationCodeAttempts", s.testCodeAttempts)
	t.Run("CodeStoredOnlyWhenMailed", s.testCodeStoredOnlyWhenMailed)
	t.Run("IdentityAssertion", s.testAssertion)
	t.Run("ConfirmIdentifiers", s.testConfirmIdentifiers)
	t.Run("Decisions", s.testDecisions)
	t.Run("Extend", s.testExtend)
	t.Run("ListAndAudit", s.testListAndAudit)
	t.Run("Export", s.testExport)
	t.Run("BreachReport", s.testBreachReport)
	t.Run("AuditFiltersAndCursor", s.testAuditFiltersAndCursor)
	t.Run("RateLimits", s.testRateLimits)
	t.Run("Breaches", s.testBreaches)
	t.Run("BreachSubjects", s.testBreachSubjects)
	t.Run("Consent", s.testConsent)
}

// Every documented operation answers (here: asks for credentials) and every undocumented
// /v1 route is no route at all.
func (s *stack) testDocumentedRoutes(t *testing.T) {
	n := 0
	for path, item := range s.doc.Paths.Map() {
		if !api.IsV1(path) {
			continue // a vendor's webhook, signed by the vendor instead (see twilio_test.go, internal/e2e/sms_test.go)
		}
		for method := range item.Operations() {
			n++
			p := strings.ReplaceAll(path, "{id}", "R-DOESNOTEXIST")
			r := s.call(t, "", method, p, "", nil)
			assert.Equal(t, http.StatusUnauthorized, r.status, "%s %s: %s", method, p, r.body)
			assert.Equal(t, "unauthorized", r.code(t), "%s %s", method, p)
			assert.NotEmpty(t, r.header.Get("WWW-Authenticate"))
			// With a token of a role the route allows, it is a real answer, not "no route".
			r = s.call(t, "", method, p, tok("salon", "admin"), nil)
			assert.NotEqual(t, "no_route", r.code(t), "%s %s", method, p)
			assert.NotEqual(t, http.StatusMethodNotAllowed, r.status, "%s %s", method, p)
		}
	}
	assert.Equal(t, 24, n, "operations in the document")
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/nothing"}, {"GET", "/v1/requests/R-1/verify"}, {"DELETE", "/v1/requests/R-1"},
		{"GET", "/v1/requests/R-1/approve"}, {"PUT", "/v1/requests"}, {"GET", "/v1/requests/"}, {"GET", "/v1"},
	} {
		r := s.call(t, "", c.method, c.path, tok("salon", "admin"), nil)
		assert.Contains(t, []int{404, 405}, r.status, "%s %s", c.method, c.path)
		assert.Contains(t, []string{"no_route", "method_not_allowed"}, r.code(t), "%s %s", c.method, c.path)
	}
	// A 405 says which methods the path does serve (RFC 9110).
	for _, c := range []struct{ method, path, allow string }{
		{"GET", "/v1/requests/R-1/verify", "POST"}, {"DELETE", "/v1/requests/R-1", "GET"},
		{"PUT", "/v1/requests", "GET, POST"}, {"TRACE", "/v1/audit", "GET"}, {"PATCH", "/v1/requests/R-1/export", "GET"},
	} {
		r := s.call(t, "", c.method, c.path, tok("salon", "admin"), nil)
		assert.Equal(t, http.StatusMethodNotAllowed, r.status, "%s %s", c.method, c.path)
		assert.Equal(t, c.allow, r.header.Get("Allow"), "%s %s", c.method, c.path)
	}
}

func (s *stack) testAuthentication(t *testing.T) {
	for _, c := range []struct {
		name, header string
	}{{"no token", ""}, {"unknown token", "Bearer nope-nope-nope-nope"}, {"basic", "Basic " + tok("salon", "admin")}, {"empty", "Bearer "}} {
		req, _ := http.NewRequest("GET", s.URL+"/v1/requests", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 401, res.StatusCode, c.name)
	}
	forbidden := []struct{ role, method, path string }{
		{"intake", "GET", "/v1/requests"},
		{"intake", "POST", "/v1/requests/R-X/approve"},
		{"intake", "POST", "/v1/requests/R-X/deny"},
		{"intake", "GET", "/v1/audit"},
		{"support", "GET", "/v1/audit"},
		{"dpo", "POST", "/v1/requests"},
		{"dpo", "POST", "/v1/requests/R-X/verify"},
		{"dpo", "POST", "/v1/requests/R-X/verification-code"},
	}
	for _, c := range forbidden {
		r := s.call(t, "", c.method, c.path, tok("salon", c.role), nil)
		assert.Equal(t, 403, r.status, "%s %s %s: %s", c.role, c.method, c.path, r.body)
		assert.Equal(t, "forbidden", r.code(t))
	}
}

// No bad input reaches a 500; each gets its own status and code.
func (s *stack) testBadInput(t *testing.T) {
	intake := tok("salon", "intake")
	big := `{"type":"access","subject":{"email":"a@example.com"},"language":"` + strings.Repeat("x", api.DefaultMaxBody) + `"}`
	cases := []struct {
		name, method, path, body, contentType string
		status                                int
		code                                  string
	}{
		{"malformed JSON", "POST", "/v1/requests", `{"type": "access",`, "", 400, "invalid_json"},
		{"not an object", "POST", "/v1/requests", `[1,2]`, "", 400, "invalid_request"},
		{"wrong type", "POST", "/v1/requests", `{"type": 5, "subject": {"email": "a@example.com"}}`, "", 400, "invalid_request"},
		{"unknown type", "POST", "/v1/requests", `{"type": "delete-everything", "subject": {"email": "a@example.com"}}`, "", 400, "invalid_request"},
		{"unknown field", "POST", "/v1/requests", `{"type": "access", "subject": {"email": "a@example.com"}, "priority": 1}`, "", 400, "invalid_request"},
		{"unknown subject field", "POST", "/v1/requests", `{"type": "access", "subject": {"email": "a@example.com", "name": "x"}}`, "", 400, "invalid_request"},
		{"missing type", "POST", "/v1/requests", `{"subject": {"email": "a@example.com"}}`, "", 400, "invalid_request"},
		{"missing body", "POST", "/v1/requests", ``, "", 400, "invalid_request"},
		{"bad phone", "POST", "/v1/requests", `{"type": "access", "subject": {"phone": "0151 123"}}`, "", 400, "invalid_request"},
		{"bad received_at", "POST", "/v1/requests", `{"type": "access", "subject": {"email": "a@example.com"}, "received_at": "yesterday"}`, "", 400, "invalid_request"},
		{"oversize", "POST", "/v1/requests", big, "", 413, "payload_too_large"},
		{"not JSON", "POST", "/v1/requests", `type=access`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"no subject", "POST", "/v1/requests", `{"type": "access"}`, "", 422, "invalid_request"},
		{"bad email", "POST", "/v1/requests", `{"type": "access", "subject": {"email": "not-an-address"}}`, "", 422, "invalid_request"},
		{"empty email", "POST", "/v1/requests", `{"type": "access", "subject": {"email": "", "phone": "+4915112345678"}}`, "", 400, "invalid_request"},
		{"rectification without changes", "POST", "/v1/requests", `{"type": "rectification", "subject": {"email": "a@example.com"}}`, "", 422, "invalid_request"},
		{"changes on access", "POST", "/v1/requests", `{"type": "access", "subject": {"email": "a@example.com"}, "changes": {"phone": "+4915112345678"}}`, "", 422, "invalid_request"},
		{"country without a holiday calendar", "POST", "/v1/requests", `{"type": "access", "subject": {"email": "a@example.com"}, "country": "ZZ"}`, "", 422, "invalid_request"},
		{"bad id", "GET", "/v1/requests/R%20X", ``, "", 400, "invalid_request"},
		{"long id", "GET", "/v1/requests/" + strings.Repeat("a", 65), ``, "", 400, "invalid_request"},
		{"unknown id", "GET", "/v1/requests/R-UNKNOWN", ``, "", 404, "not_found"},
		{"verify unknown id", "POST", "/v1/requests/R-UNKNOWN/verify", `{"code": "123456"}`, "", 404, "not_found"},
		{"verify no code", "POST", "/v1/requests/R-UNKNOWN/verify", `{}`, "", 400, "invalid_request"},
		{"verify code not a string", "POST", "/v1/requests/R-UNKNOWN/verify", `{"code": 123456}`, "", 400, "invalid_request"},
		{"resend body", "POST", "/v1/requests/R-UNKNOWN/verification-code", `{"x": 1}`, "", 400, "invalid_request"},
		{"resend unknown id", "POST", "/v1/requests/R-UNKNOWN/verification-code", ``, "", 404, "not_found"},
		// A route without a body never reads one, so it answers what its document says: 400.
		{"oversize without a body route", "GET", "/v1/requests/R-UNKNOWN", big, "", 400, "invalid_request"},
		{"oversize resend", "POST", "/v1/requests/R-UNKNOWN/verification-code", big, "text/plain", 413, "payload_too_large"},
		{"resend channel unknown", "POST", "/v1/requests/R-UNKNOWN/verification-code", `{"channel": "fax"}`, "", 400, "invalid_request"},
	}
	for _, c := range cases {
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		var raw []byte
		if c.body != "" {
			raw = []byte(c.body)
		}
		r := s.send(t, "", c.method, c.path, intake, ct, raw)
		assert.Equal(t, c.status, r.status, "%s: %s", c.name, r.body)
		if r.status == c.status {
			assert.Equal(t, c.code, r.code(t), "%s: %s", c.name, r.body)
		}
		if strings.Contains(c.body, `"country"`) {
			assert.Contains(t, string(r.body), "country must be one of AT, BE,", "the answer names the field and the supported codes")
		}
		assert.NotContains(t, string(r.body), "not-an-address", "%s: an error repeats the value sent", c.name)
	}
	support := tok("salon", "support")
	for _, c := range []struct {
		name, path, body string
		status           int
	}{
		{"limit zero", "/v1/requests?limit=0", "", 400},
		{"limit text", "/v1/requests?limit=ten", "", 400},
		{"bad status", "/v1/requests?status=lost", "", 400},
		{"bad due_before", "/v1/requests?due_before=soon", "", 400},
		{"deny without reason", "/v1/requests/R-UNKNOWN/deny", `{}`, 400},
		{"deny blank reason", "/v1/requests/R-UNKNOWN/deny", `{"reason": "   "}`, 400},
		{"cancel reason of no-break spaces", "/v1/requests/R-UNKNOWN/cancel", "{\"reason\": \"\u00a0\u3000\"}", 400},
		{"approve unknown", "/v1/requests/R-UNKNOWN/approve", ``, 404},
		{"extend reason wrong type", "/v1/requests/R-UNKNOWN/extend", `{"reason": ["x"]}`, 400},
		{"cancel unknown", "/v1/requests/R-UNKNOWN/cancel", `{"reason": "asked by phone"}`, 404},
		{"retry unknown", "/v1/requests/R-UNKNOWN/retry", `{"reason": "fixed"}`, 404},
		{"export unknown", "/v1/requests/R-UNKNOWN/export", "", 404},
	} {
		method := "POST"
		if strings.Contains(c.path, "?") || strings.HasSuffix(c.path, "/export") {
			method = "GET"
		}
		var raw []byte
		if c.body != "" {
			raw = []byte(c.body)
		}
		r := s.send(t, "", method, c.path, support, "application/json", raw)
		assert.Equal(t, c.status, r.status, "%s: %s", c.name, r.body)
	}
}

func (s *stack) testSubmitAndGet(t *testing.T) {
	addr := email(t)
	r := s.call(t, "", "POST", "/v1/requests", tok("salon", "intake"), map[string]any{
		"type": "access", "subject": map[string]any{"email": addr}, "language": "en", "request_id": "API-" + strings.ToUpper(hex.EncodeToString([]byte(addr))[:12]),
	})
	require.Equal(t, 201, r.status, "%s", r.body)
	body := r.json(t)
	id := body["request_id"].(string)
	assert.Equal(t, false, body["identity_verified"])
	assert.Equal(t, "/v1/requests/"+id, r.header.Get("Location"))
	st := s.await(t, "salon", id, status("identity_pending"))
	assert.Equal(t, "access", st["type"])
	assert.NotEmpty(t, st["due_date"], "the clock starts on receipt")
	assert.NotContains(t, string(s.call(t, "", "GET", "/v1/requests/"+id, tok("salon", "intake"), nil).body), addr, "a status shows no subject identifiers")

	// The same request_id again is one request.
	again := s.call(t, "", "POST", "/v1/requests", tok("salon", "intake"), map[string]any{
		"type": "access", "subject": map[string]any{"email": addr}, "request_id": id,
	})
	assert.Equal(t, 409, again.status)
	assert.Equal(t, "duplicate", again.code(t))
}

func (s *stack) testReceivedAt(t *testing.T) {
	posted := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Second)
	body := map[string]any{"type": "access", "subject": map[string]any{"email": email(t)}, "received_at": posted.Format(time.RFC3339)}
	r := s.call(t, "", "POST", "/v1/requests", tok("salon", "intake"), body)
	assert.Equal(t, 403, r.status, "%s", r.body)
	assert.Contains(t, r.json(t)["message"], "received_at")

	for _, role := range []string{"support", "admin"} {
		r = s.call(t, "", "POST", "/v1/requests", tok("salon", role), body)
		require.Equal(t, 201, r.status, "%s: %s", role, r.body)
		id := r.json(t)["request_id"].(string)
		got := s.call(t, "", "GET", "/v1/requests/"+id, tok("salon", "support"), nil).json(t)
		at, err := time.Parse(time.RFC3339, got["received_at"].(string))
		require.NoError(t, err)
		assert.True(t, at.Equal(posted), "%s: received_at = %s, want %s", role, at, posted)
	}
	future := map[string]any{"type": "access", "subject": map[string]any{"email": email(t)}, "received_at": time.Now().Add(24 * time.Hour).Format(time.RFC3339)}
	r = s.call(t, "", "POST", "/v1/requests", tok("salon", "support"), future)
	assert.Equal(t, 422, r.status, "%s", r.body)
}

// A token of one tenant never sees another tenant's request: not found, never forbidden.
func (s *stack) testCrossTenant(t *testing.T) {
	id := s.submit(t, map[string]any{"type": "restriction", "subject": map[string]any{"email": email(t)}})
	s.await(t, "salon", id, status("identity_pending"))
	for _, c := range []struct{ role, method, path, body string }{
		{"support", "GET", "/v1/requests/" + id, ""},
		{"intake", "GET", "/v1/requests/" + id, ""},
		{"intake", "POST", "/v1/requests/" + id + "/verify", `{"code": "123456"}`},
		{"intake", "POST", "/v1/requests/" + id + "/verification-code", ""},
		{"support", "POST", "/v1/requests/" + id + "/approve", ""},
		{"support", "POST", "/v1/requests/" + id + "/deny", `{"reason": "no"}`},
		{"dpo", "POST", "/v1/requests/" + id + "/extend", `{"reason": "complex"}`},
		{"admin", "POST", "/v1/requests/" + id + "/cancel", `{"reason": "no"}`},
		{"admin", "POST", "/v1/requests/" + id + "/retry", ""},
		{"admin", "GET", "/v1/requests/" + id + "/export", ""},
	} {
		var raw []byte
		if c.body != "" {
			raw = []byte(c.body)
		}
		r := s.send(t, "", c.method, c.path, tok("spa", c.role), "application/json", raw)
		assert.Equal(t, 404, r.status, "spa %s %s %s: %s", c.role, c.method, c.path, r.body)
	}
	list := s.call(t, "", "GET", "/v1/requests?limit=1000", tok("spa", "support"), nil)
	assert.NotContains(t, string(list.body), id)
	audit := s.call(t, "", "GET", "/v1/audit?request_id="+id, tok("spa", "dpo"), nil)
	assert.Equal(t, []any{}, audit.json(t)["events"])
	// Submitting with the other tenant's id does not touch it.
	dup := s.call(t, "", "POST", "/v1/requests", tok("spa", "intake"), map[string]any{"type": "access", "subject": map[string]any{"email": email(t)}, "request_id": id})
	assert.Equal(t, 409, dup.status)
	assert.Equal(t, "identity_pending", s.call(t, "", "GET", "/v1/requests/"+id, tok("salon", "support"), nil).json(t)["status"])
	// The request stays the salon's and unverified.
	r := s.call(t, "", "POST", "/v1/requests/"+id+"/cancel", tok("salon", "support"), map[string]any{"reason": "test over"})
	assert.Equal(t, 200, r.status, "%s", r.body)
}

// sendCode asks for a code through the API and returns it from the mailbox.
// codeSent submits an access request for a new subject and sends it a new code.
func (s *stack) codeSent(t *testing.T) (addr, id, code string) {
	t.Helper()
	addr = email(t)
	id = s.submit(t, map[string]any{"type": "access", "subject": map[string]any{"email": addr}})
	s.await(t, "salon", id, status("identity_pending"))
	return addr, id, s.sendCode(t, "", addr, id)
}

func (s *stack) sendCode(t *testing.T, base, addr, id string) string {
	t.Helper()
	// The workflow emails the first code itself; a new one asked for before that could be
	// replaced by it.
	deadline := time.Now().Add(time.Minute)
	for s.latestCode(t, addr, id) == "" {
		require.True(t, time.Now().Before(deadline), "the workflow never emailed the first code")
		<-time.After(20 * time.Millisecond)
	}
	r := s.call(t, base, "POST", "/v1/requests/"+id+"/verification-code", tok("salon", "intake"), nil)
	require.Equal(t, 202, r.status, "%s", r.body)
	exp, err := time.Parse(time.RFC3339, r.json(t)["expires_at"].(string))
	require.NoError(t, err)
	if base == "" { // the stack's codes run on the real clock
		assert.WithinDuration(t, time.Now().Add(identity.DefaultCodeTTL), exp, 2*time.Minute)
	}
	code := s.latestCode(t, addr, id)
	require.NotEmpty(t, code, "no verification email to the subject")
	return code
}

func (s *stack) testVerificationCode(t *testing.T) {
	addr, id, code := s.codeSent(t)

	verify := func(c string) response {
		return s.call(t, "", "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": c})
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	r := verify(wrong)
	assert.Equal(t, 422, r.status)
	assert.Equal(t, "wrong_code", r.code(t))
	assert.NotContains(t, string(r.body), wrong)
	r = verify("not-a-code-at-all")
	assert.Equal(t, 422, r.status, "a forged code")
	assert.Equal(t, "wrong_code", r.code(t))

	// A code for another request does not verify this one.
	otherAddr := email(t)
	other := s.submit(t, map[string]any{"type": "access", "subject": map[string]any{"email": otherAddr}})
	s.await(t, "salon", other, status("identity_pending"))
	otherCode := s.sendCode(t, "", otherAddr, other)
	if otherCode != code {
		r = verify(otherCode)
		assert.Equal(t, "wrong_code", r.code(t), "another request's code")
	}

	// A new code replaces the old one.
	old := code
	code = s.sendCode(t, "", addr, id)
	if old != code {
		r = verify(old)
		assert.Contains(t, []string{"wrong_code", "code_used", "code_expired"}, r.code(t), "a replaced code")
	}

	r = verify(code)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.NotEmpty(t, r.json(t)["identity_verified_at"])

	r = verify(code)
	assert.Equal(t, 409, r.status, "a reused code")
	assert.Equal(t, "already_verified", r.code(t))
	r = s.call(t, "", "POST", "/v1/requests/"+id+"/verification-code", tok("salon", "intake"), nil)
	assert.Equal(t, 409, r.status)
	assert.Equal(t, "already_verified", r.code(t))

	s.await(t, "salon", id, status("completed"))

	// A request with no email address cannot get a code.
	phoneOnly := s.submit(t, map[string]any{"type": "access", "subject": map[string]any{"phone": "+4915100000001"}})
	s.await(t, "salon", phoneOnly, status("identity_pending"))
	r = s.call(t, "", "POST", "/v1/requests/"+phoneOnly+"/verification-code", tok("salon", "intake"), nil)
	assert.Equal(t, 422, r.status)
	assert.Equal(t, "no_email", r.code(t))
	// Nor by text from a tenant that sends none, nor by a channel that does not exist.
	r = s.call(t, "", "POST", "/v1/requests/"+phoneOnly+"/verification-code", tok("salon", "intake"), map[string]any{"channel": "sms"})
	assert.Equal(t, 422, r.status, "%s", r.body)
	assert.Equal(t, "channel_unavailable", r.code(t))
	assert.Contains(t, r.json(t)["message"], "not sent by text")
	r = s.call(t, "", "POST", "/v1/requests/"+phoneOnly+"/verification-code", tok("salon", "intake"), map[string]any{"channel": "fax"})
	assert.Equal(t, 400, r.status, "%s", r.body)
	r = s.call(t, "", "POST", "/v1/requests/"+phoneOnly+"/verify", tok("salon", "intake"), map[string]any{"code": "123456"})
	assert.Equal(t, "no_code", r.code(t))
}

// clock is a settable clock for codes and rate limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// codesAt serves /v1 with verification codes on a clock the test moves.
func (s *stack) codesAt(t *testing.T, c *clock) string {
	svc := *s.svc
	svc.Codes = &identity.Codes{Pool: s.Deps.Store.Pool, Key: []byte(signingKey), Now: c.Now}
	return s.serve(api.V1Options{Requests: &svc})
}

func (s *stack) testCodeExpires(t *testing.T) {
	c := &clock{t: time.Now()}
	base := s.codesAt(t, c)
	addr := email(t)
	id := s.submit(t, map[string]any{"type": "access", "subject": map[string]any{"email": addr}})
	s.await(t, "salon", id, status("identity_pending"))
	code := s.sendCode(t, base, addr, id)
	c.add(16 * time.Minute)
	r := s.call(t, base, "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": code})
	assert.Equal(t, 422, r.status, "%s", r.body)
	assert.Equal(t, "code_expired", r.code(t))
	// A fresh code works.
	code = s.sendCode(t, base, addr, id)
	r = s.call(t, base, "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": code})
	assert.Equal(t, 200, r.status, "%s", r.body)
}

func (s *stack) testCodeAttempts(t *testing.T) {
	addr, id, code := s.codeSent(t)
	wrong := "999999"
	if code == wrong {
		wrong = "888888"
	}
	verify := func(c string) response {
		return s.call(t, "", "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": c})
	}
	for i := 0; i < identity.DefaultMaxAttempts; i++ {
		assert.Equal(t, "wrong_code", verify(wrong).code(t), "attempt %d", i+1)
	}
	r := verify(code)
	assert.Equal(t, 429, r.status, "the right code after too many wrong ones")
	assert.Equal(t, "too_many_attempts", r.code(t))
	assert.NotEmpty(t, r.header.Get("Retry-After"))

	// Codes per hour are limited too (the workflow may have sent one of them).
	sent := 1
	for ; sent <= identity.DefaultMaxIssuesPerHour; sent++ {
		r = s.call(t, "", "POST", "/v1/requests/"+id+"/verification-code", tok("salon", "intake"), nil)
		if r.status != 202 {
			break
		}
		code = s.latestCode(t, addr, id)
	}
	assert.Equal(t, 429, r.status, "%s", r.body)
	assert.Equal(t, "too_many_codes", r.code(t))
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.LessOrEqual(t, sent, identity.DefaultMaxIssuesPerHour)
	r = verify(code)
	assert.Equal(t, 200, r.status, "the last code sent still works: %s", r.body)
}

// A new code whose email Mailgun refused is never stored: the code the subject holds still
// works.
func (s *stack) testCodeStoredOnlyWhenMailed(t *testing.T) {
	_, id, code := s.codeSent(t)

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	m, err := mail.NewMailgun(mail.Config{Domain: "mg.salon.example", APIKey: "k", APIBase: down.URL + "/v3", From: "privacy@mg.salon.example"})
	require.NoError(t, err)
	restore := s.mail.use(m) // the worker's mail
	_, err = s.svc.SendCode(context.Background(), "salon", id, "")
	restore()
	require.ErrorIs(t, err, requests.ErrUnavailable)

	r := s.call(t, "", "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": code})
	assert.Equal(t, 200, r.status, "the code mailed before still works: %s", r.body)
}

func (s *stack) assertion(t *testing.T, a identity.Assertion, audience string) string {
	t.Helper()
	if audience == "" {
		audience = identity.Audience(s.URL, "salon")
	}
	if a.IssuedAt.IsZero() {
		a.IssuedAt = time.Now()
		a.ExpiresAt = a.IssuedAt.Add(5 * time.Minute)
	}
	token, err := identity.SignAssertion([]byte(assertionKey), a, audience)
	require.NoError(t, err)
	return token
}

func (s *stack) testAssertion(t *testing.T) {
	addr := email(t)
	submit := func(body map[string]any) response {
		return s.call(t, "", "POST", "/v1/requests", tok("salon", "intake"), body)
	}
	good := s.assertion(t, identity.Assertion{Email: addr, CustomerID: "C-1"}, "")
	r := submit(map[string]any{"type": "access", "subject": map[string]any{"email": strings.ToUpper(addr)}, "identity_assertion": good})
	require.Equal(t, 201, r.status, "%s", r.body)
	assert.Equal(t, true, r.json(t)["identity_verified"])
	id := r.json(t)["request_id"].(string)
	st := s.await(t, "salon", id, func(st map[string]any) bool { return st["identity_verified_at"] != nil })
	assert.NotEqual(t, "identity_pending", st["status"])

	r = submit(map[string]any{"type": "access", "subject": map[string]any{"email": addr}, "identity_assertion": good})
	assert.Equal(t, "assertion_replayed", r.code(t), "an assertion works once")

	// Identifiers left out are taken from the assertion.
	r = submit(map[string]any{"type": "access", "identity_assertion": s.assertion(t, identity.Assertion{Email: email(t)}, "")})
	assert.Equal(t, 201, r.status, "%s", r.body)

	forgedKey := strings.Repeat("k", 40)
	forged, err := identity.SignAssertion([]byte(forgedKey), identity.Assertion{Email: addr, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}, identity.Audience(s.URL, "salon"))
	require.NoError(t, err)
	for _, c := range []struct {
		name, token, code string
		subject           map[string]any
	}{
		{"expired", s.assertion(t, identity.Assertion{Email: addr, IssuedAt: time.Now().Add(-20 * time.Minute), ExpiresAt: time.Now().Add(-15 * time.Minute)}, ""), "assertion_expired", nil},
		{"forged", forged, "assertion_invalid", nil},
		{"tampered", good[:len(good)-4] + "AAAA", "assertion_invalid", nil},
		{"garbage", "not.a.jwt", "assertion_invalid", nil},
		{"another tenant's audience", s.assertion(t, identity.Assertion{Email: addr}, identity.Audience(s.URL, "spa")), "assertion_invalid", nil},
		{"another subject", s.assertion(t, identity.Assertion{Email: email(t)}, ""), "assertion_mismatch", map[string]any{"email": addr}},
		{"an identifier it does not vouch for", s.assertion(t, identity.Assertion{Email: addr}, ""), "assertion_mismatch", map[string]any{"email": addr, "customer_id": "C-2"}},
	} {
		body := map[string]any{"type": "access", "identity_assertion": c.token}
		if c.subject != nil {
			body["subject"] = c.subject
		}
		r := submit(body)
		assert.Equal(t, 422, r.status, "%s: %s", c.name, r.body)
		if r.status == 422 {
			assert.Equal(t, c.code, r.code(t), c.name)
		}
		assert.NotContains(t, string(r.body), addr, c.name)
	}
}

// verified submits a request whose identity the host app vouches for.
func (s *stack) verified(t *testing.T, typ, addr string) string {
	t.Helper()
	return s.submit(t, map[string]any{"type": typ, "subject": map[string]any{"email": addr},
		"identity_assertion": s.assertion(t, identity.Assertion{Email: addr}, "")})
}

func (s *stack) testDecisions(t *testing.T) {
	support := tok("salon", "support")
	decide := func(id, what string, body any) response {
		return s.call(t, "", "POST", "/v1/requests/"+id+"/"+what, support, body)
	}

	approved := s.verified(t, "restriction", email(t))
	s.await(t, "salon", approved, status("pending_approval"))
	r := decide(approved, "retry", nil)
	assert.Equal(t, 409, r.status, "retry of a request that did not fail: %s", r.body)
	assert.Equal(t, "conflict", r.code(t))
	r = decide(approved, "approve", map[string]any{"actor": "Dana at the front desk"})
	require.Equal(t, 200, r.status, "%s", r.body)
	s.await(t, "salon", approved, status("completed"))

	// A connector fails the request (its table is gone); staff fix the system and retry.
	ctx := context.Background()
	_, err := s.Demo.Exec(ctx, `ALTER TABLE customers RENAME TO customers_away`)
	require.NoError(t, err)
	failing := s.verified(t, "restriction", email(t))
	s.await(t, "salon", failing, status("pending_approval"))
	require.Equal(t, 200, decide(failing, "approve", nil).status)
	failed := s.await(t, "salon", failing, status("failed"))
	assert.NotEmpty(t, failed["connectors"], "the failed connector is named")
	_, err = s.Demo.Exec(ctx, `ALTER TABLE customers_away RENAME TO customers`)
	require.NoError(t, err)
	r = decide(failing, "retry", map[string]any{"actor": "Dana"})
	require.Equal(t, 200, r.status, "%s", r.body)
	s.await(t, "salon", failing, status("completed"))
	r = decide(approved, "approve", nil)
	assert.Equal(t, 409, r.status, "approving a closed request")

	denied := s.verified(t, "erasure", email(t))
	s.await(t, "salon", denied, status("pending_approval"))
	r = decide(denied, "deny", map[string]any{"reason": "manifestly unfounded"})
	require.Equal(t, 200, r.status, "%s", r.body)
	st := s.await(t, "salon", denied, status("denied"))
	assert.Equal(t, "manifestly unfounded", st["denial_reason"])

	canceled := s.verified(t, "restriction", email(t))
	s.await(t, "salon", canceled, status("pending_approval"))
	r = s.call(t, "", "POST", "/v1/requests/"+canceled+"/cancel", tok("salon", "dpo"), map[string]any{"reason": "withdrawn by the subject"})
	require.Equal(t, 200, r.status, "%s", r.body)
	s.await(t, "salon", canceled, status("canceled"))

	// Who decided is in the audit trail: the person and the token's tenant and role.
	s.awaitEvent(t, approved, func(e map[string]any) bool { return e["actor"] == "Dana at the front desk (api:salon/support)" })
	s.awaitEvent(t, canceled, func(e map[string]any) bool { return e["action"] == "request.canceled" && e["actor"] == "api:salon/dpo" })
}

// awaitEvent polls the request's audit trail until an event matches: the read model and the
// trail are written by the workflow's activities a moment after its state changes.
func (s *stack) awaitEvent(t *testing.T, id string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := s.call(t, "", "GET", "/v1/audit?limit=1000&request_id="+id, tok("salon", "dpo"), nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		for _, e := range r.json(t)["events"].([]any) {
			if m := e.(map[string]any); match(m) {
				assert.Equal(t, id, m["request_id"])
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching audit event for %s; have %s", id, r.body)
		}
		time.Sleep(50 * time.Millisecond) // polling the audit trail, not waiting out a timer
	}
}

func (s *stack) testExtend(t *testing.T) {
	support := tok("salon", "support")
	closed := s.verified(t, "restriction", email(t))
	s.await(t, "salon", closed, status("pending_approval"))
	s.call(t, "", "POST", "/v1/requests/"+closed+"/deny", support, map[string]any{"reason": "test over"})
	s.await(t, "salon", closed, status("denied"))
	r := s.call(t, "", "POST", "/v1/requests/"+closed+"/extend", support, map[string]any{"reason": "complex"})
	assert.Equal(t, 409, r.status, "extending a closed request: %s", r.body)

	id := s.verified(t, "erasure", email(t))
	s.await(t, "salon", id, status("pending_approval"))
	r = s.call(t, "", "POST", "/v1/requests/"+id+"/extend", tok("salon", "dpo"), map[string]any{"reason": "we need to check three systems"})
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, true, r.json(t)["extended"])
	r = s.call(t, "", "POST", "/v1/requests/"+id+"/extend", support, map[string]any{"reason": "again"})
	assert.Equal(t, 409, r.status, "a second extension")
	s.call(t, "", "POST", "/v1/requests/"+id+"/deny", support, map[string]any{"reason": "test over"})
}

func (s *stack) testListAndAudit(t *testing.T) {
	a := s.verified(t, "restriction", email(t))
	b := s.verified(t, "restriction", email(t))
	s.await(t, "salon", a, status("pending_approval"))
	s.await(t, "salon", b, status("pending_approval"))
	// The listing reads the read model, which follows the workflow.
	for _, id := range []string{a, b} {
		s.awaitEvent(t, id, func(e map[string]any) bool { return e["action"] == "request.pending_approval" })
	}
	r := s.call(t, "", "GET", "/v1/requests?status=pending_approval&limit=1000", tok("salon", "dpo"), nil)
	require.Equal(t, 200, r.status)
	var ids []string
	for _, x := range r.json(t)["requests"].([]any) {
		m := x.(map[string]any)
		assert.Equal(t, "pending_approval", m["status"])
		ids = append(ids, m["id"].(string))
	}
	assert.Contains(t, ids, a)
	assert.Contains(t, ids, b)
	r = s.call(t, "", "GET", "/v1/requests?limit=1", tok("salon", "support"), nil)
	assert.Len(t, r.json(t)["requests"], 1)
	r = s.call(t, "", "GET", "/v1/requests?due_before=2000-01-01", tok("salon", "support"), nil)
	assert.Equal(t, []any{}, r.json(t)["requests"])

	r = s.call(t, "", "GET", "/v1/audit?request_id="+a+"&limit=1000", tok("salon", "dpo"), nil)
	require.Equal(t, 200, r.status)
	var actions []string
	for _, e := range r.json(t)["events"].([]any) {
		m := e.(map[string]any)
		assert.Equal(t, a, m["request_id"])
		actions = append(actions, m["action"].(string))
	}
	assert.Contains(t, actions, "request.received")
	assert.Contains(t, actions, "request.pending_approval")
	r = s.call(t, "", "GET", "/v1/audit?limit=2", tok("salon", "admin"), nil)
	assert.Len(t, r.json(t)["events"], 2)
	for _, id := range []string{a, b} {
		s.call(t, "", "POST", "/v1/requests/"+id+"/deny", tok("salon", "support"), map[string]any{"reason": "test over"})
	}
}

// Staff reading a subject's identifiers is audited with the actor and the subject's reference;
// the trail pages with a cursor and filters like lethe audit list.
func (s *stack) testAuditFiltersAndCursor(t *testing.T) {
	addr := email(t)
	r := s.call(t, "", "POST", "/v1/requests", tok("salon", "intake"), map[string]any{"type": "access", "subject": map[string]any{"email": addr}})
	require.Equal(t, 201, r.status, "%s", r.body)
	id := r.json(t)["request_id"].(string)
	s.await(t, "salon", id, status("identity_pending")) // reads as support too
	views := func() []any {
		r := s.call(t, "", "GET", "/v1/audit?action=request.subject_viewed&request_id="+id, tok("salon", "dpo"), nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		assert.NotContains(t, string(r.body), addr, "the trail holds references, never the identifiers")
		return r.json(t)["events"].([]any)
	}
	before := len(views())
	for i := 0; i < 3; i++ {
		require.Equal(t, 200, s.call(t, "", "GET", "/v1/requests/"+id, tok("salon", "support"), nil).status)
	}
	require.Equal(t, 200, s.call(t, "", "GET", "/v1/requests/"+id, tok("salon", "intake"), nil).status)
	events := views()
	require.Len(t, events, before+3, "every staff read of the identifiers is audited, and only staff see them")
	first := events[0].(map[string]any)
	assert.Equal(t, "api:salon/support", first["actor"])
	assert.Equal(t, []any{"email"}, first["detail"].(map[string]any)["identifiers"])
	ref := first["subject_ref"].(string)
	require.Len(t, ref, 64)

	// Two events a page: the pages together are all the reads, newest first, each once.
	var seen []float64
	cursor := ""
	for pages := 0; ; pages++ {
		require.LessOrEqual(t, pages, len(events)/2)
		path := "/v1/audit?limit=2&subject_ref=" + ref + "&actor=api:salon/support"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		page := s.call(t, "", "GET", path, tok("salon", "dpo"), nil)
		require.Equal(t, 200, page.status, "%s", page.body)
		body := page.json(t)
		for _, e := range body["events"].([]any) {
			seen = append(seen, e.(map[string]any)["id"].(float64))
		}
		next, ok := body["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	require.Len(t, seen, len(events))
	for i := 1; i < len(seen); i++ {
		assert.Greater(t, seen[i-1], seen[i], "newest first: %v", seen)
	}

	future := s.call(t, "", "GET", "/v1/audit?request_id="+id+"&since=2999-01-01T00:00:00Z", tok("salon", "dpo"), nil)
	assert.Equal(t, []any{}, future.json(t)["events"])
	past := s.call(t, "", "GET", "/v1/audit?request_id="+id+"&until=2000-01-01T00:00:00Z", tok("salon", "dpo"), nil)
	assert.Equal(t, []any{}, past.json(t)["events"])
	// A cursor past 32 bits is still a cursor: every event of the request is older than it.
	all := s.call(t, "", "GET", "/v1/audit?request_id="+id+"&limit=1000", tok("salon", "dpo"), nil)
	far := s.call(t, "", "GET", "/v1/audit?request_id="+id+"&limit=1000&cursor=5716289944", tok("salon", "dpo"), nil)
	require.Equal(t, 200, far.status, "%s", far.body)
	// The workflow may append (its code notice) between the two reads: compare what both saw.
	allEvents := all.json(t)["events"].([]any)
	require.NotEmpty(t, allEvents)
	newest := allEvents[0].(map[string]any)["id"].(float64)
	var farSeen []any
	for _, e := range far.json(t)["events"].([]any) {
		if e.(map[string]any)["id"].(float64) <= newest {
			farSeen = append(farSeen, e)
		}
	}
	assert.Equal(t, allEvents, farSeen)
	for _, bad := range []string{"cursor=abc", "cursor=0", "since=yesterday", "subject_ref=" + addr, "actor=a%00b"} {
		r := s.call(t, "", "GET", "/v1/audit?"+bad, tok("salon", "dpo"), nil)
		assert.Equal(t, 400, r.status, "%s: %s", bad, r.body)
	}
	require.Equal(t, 200, s.call(t, "", "POST", "/v1/requests/"+id+"/cancel", tok("salon", "support"), map[string]any{"reason": "test over"}).status)
}

func (s *stack) testExport(t *testing.T) {
	id := s.verified(t, "access", demo.ClearCustomerEmail)
	pending := s.verified(t, "restriction", email(t))
	st := s.await(t, "salon", id, status("completed"))
	require.NotNil(t, st["export"], "an access request ends with an export")
	sum := st["export"].(map[string]any)["sha256"].(string)

	r := s.call(t, "", "GET", "/v1/requests/"+pending+"/export", tok("salon", "support"), nil)
	assert.Equal(t, 409, r.status, "%s", r.body)
	assert.Equal(t, "no_export", r.code(t))

	r = s.call(t, "", "GET", "/v1/requests/"+id+"/export", tok("salon", "support"), nil)
	require.Equal(t, http.StatusFound, r.status, "%s", r.body)
	link := r.header.Get("Location")
	assert.Equal(t, link, r.json(t)["url"])
	require.True(t, strings.HasPrefix(link, s.URL+"/v1/requests/"+id+"/export?token="), link)
	path := strings.TrimPrefix(link, s.URL)

	download := func() response { return s.call(t, "", "GET", path, "", nil) }
	for i := 0; i < 2; i++ {
		r = download()
		require.Equal(t, 200, r.status, "%s", r.body)
		got := sha256.Sum256(r.body)
		assert.Equal(t, sum, hex.EncodeToString(got[:]))
		assert.Equal(t, sum, r.header.Get("X-Checksum-Sha256"))
		assert.Contains(t, r.header.Get("Content-Disposition"), id)
		z, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
		require.NoError(t, err)
		var names []string
		for _, f := range z.File {
			names = append(names, f.Name)
		}
		sort.Strings(names)
		assert.NotEmpty(t, names)
	}
	events := s.call(t, "", "GET", "/v1/audit?request_id="+id+"&limit=1000", tok("salon", "dpo"), nil).json(t)["events"].([]any)
	downloads := 0
	for _, e := range events {
		if e.(map[string]any)["action"] == "request.export_downloaded" {
			downloads++
			assert.Equal(t, sum, e.(map[string]any)["detail"].(map[string]any)["sha256"])
		}
	}
	assert.Equal(t, 2, downloads, "every download is audited")
	for _, e := range events {
		if m := e.(map[string]any); m["action"] == "request.export_downloaded" {
			assert.Len(t, m["subject_ref"], 64, "a download names the subject by reference")
		}
	}

	token := strings.TrimPrefix(link, s.URL+"/v1/requests/"+id+"/export?token=")
	raw, err := url.QueryUnescape(token)
	require.NoError(t, err)
	flipped := []byte(raw)
	flipped[len(flipped)/2] ^= 1
	past := links.Signer{Key: []byte(signingKey), Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }}
	expired, _ := past.Sign("salon", id, time.Hour)
	otherTenant, _ := (links.Signer{Key: []byte(signingKey)}).Sign("spa", id, time.Hour)
	otherKey, _ := (links.Signer{Key: []byte("another-key-0123456789abcdef0123")}).Sign("salon", id, time.Hour)
	for _, c := range []struct{ name, path, code string }{
		{"tampered", "/v1/requests/" + id + "/export?token=" + url.QueryEscape(string(flipped)), "link_invalid"},
		{"truncated", "/v1/requests/" + id + "/export?token=" + url.QueryEscape(raw[:len(raw)-3]), "link_invalid"},
		{"another key", "/v1/requests/" + id + "/export?token=" + url.QueryEscape(otherKey), "link_invalid"},
		{"another tenant", "/v1/requests/" + id + "/export?token=" + url.QueryEscape(otherTenant), "link_invalid"},
		{"another request's URL", "/v1/requests/" + pending + "/export?token=" + token, "link_invalid"},
		{"expired", "/v1/requests/" + id + "/export?token=" + url.QueryEscape(expired), "link_expired"},
	} {
		r := s.call(t, "", "GET", c.path, "", nil)
		assert.Equal(t, 403, r.status, "%s: %s", c.name, r.body)
		if r.status == 403 {
			assert.Equal(t, c.code, r.code(t), c.name)
		}
	}
	// The host app may fetch a link for its user; another tenant may not.
	assert.Equal(t, http.StatusFound, s.call(t, "", "GET", "/v1/requests/"+id+"/export", tok("salon", "intake"), nil).status)
	assert.Equal(t, 404, s.call(t, "", "GET", "/v1/requests/"+id+"/export", tok("spa", "admin"), nil).status)
	s.call(t, "", "POST", "/v1/requests/"+pending+"/deny", tok("salon", "support"), map[string]any{"reason": "test over"})
}

func (s *stack) testRateLimits(t *testing.T) {
	c := &clock{t: time.Now()}
	svc := *s.svc
	svc.Codes = &identity.Codes{Pool: s.Deps.Store.Pool, Key: []byte(signingKey), Now: c.Now}
	svc.Limits = limits.New(s.Deps.Store, config.Limits{
		Submit: config.Scopes{Tenant: config.Rate{N: 3, Per: time.Hour}, Subject: config.Rate{N: 2, Per: time.Hour}},
		Verify: config.Scopes{Tenant: config.Rate{N: 100, Per: time.Hour}, Subject: config.Rate{N: 2, Per: time.Minute}},
		Resend: config.Scopes{Tenant: config.Rate{N: 100, Per: time.Hour}, Subject: config.Rate{N: 1, Per: 10 * time.Minute}},
	}, signingKey, c.Now)
	base := s.serve(api.V1Options{Requests: &svc})
	submit := func(tenant, addr string) response {
		return s.call(t, base, "POST", "/v1/requests", tok(tenant, "intake"), map[string]any{"type": "access", "subject": map[string]any{"email": addr}})
	}
	limited := func(r response, what string) {
		t.Helper()
		require.Equal(t, 429, r.status, "%s: %s", what, r.body)
		assert.Equal(t, "rate_limited", r.code(t))
		assert.NotEmpty(t, r.header.Get("Retry-After"), what)
	}
	addr := email(t)
	first := submit("salon", addr)
	require.Equal(t, 201, first.status, "%s", first.body)
	require.Equal(t, 201, submit("salon", strings.ToUpper(addr)).status)
	r := submit("salon", addr)
	limited(r, "the subject's third request within the hour")
	assert.Equal(t, "1800", r.header.Get("Retry-After"), "two an hour: one more every half hour")
	require.Equal(t, 201, submit("salon", email(t)).status, "another subject")
	limited(submit("salon", email(t)), "the tenant's fourth request within the hour")
	require.Equal(t, 201, submit("spa", addr).status, "another tenant has its own buckets")
	c.add(time.Hour)
	require.Equal(t, 201, submit("salon", addr).status, "an hour later")

	id := first.json(t)["request_id"].(string)
	s.await(t, "salon", id, status("identity_pending"))
	code := s.sendCode(t, base, addr, id)
	r = s.call(t, base, "POST", "/v1/requests/"+id+"/verification-code", tok("salon", "intake"), nil)
	limited(r, "a second code within ten minutes")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := 0; i < 2; i++ {
		r = s.call(t, base, "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": wrong})
		assert.Equal(t, "wrong_code", r.code(t))
	}
	limited(s.call(t, base, "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": code}), "a third guess within the minute")
	c.add(time.Minute)
	assert.Equal(t, 200, s.call(t, base, "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": code}).status)
}
