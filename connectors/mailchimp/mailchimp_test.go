package mailchimp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/connectortest"
	"github.com/lethe-privacy/lethe/connectors/mailchimp"
	"github.com/lethe-privacy/lethe/internal/mailchimpstandin"
)

const key = "0123456789abcdef0123456789abcdef-us6"

var audiences = []string{"a1b2c3d4e5", "f6g7h8i9j0"}

// env is a stand-in with two audiences and a connector configured for it.
type env struct {
	mc   *mailchimpstandin.Server
	conn connectors.Connector
	seq  atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	mc := mailchimpstandin.New(key)
	t.Cleanup(mc.Close)
	for _, a := range audiences {
		mc.AddList(a, "Salon news "+a)
	}
	return &env{mc: mc, conn: open(t, mc, key)}
}

// open builds the connector through the registry, with the key in a file.
func open(t *testing.T, mc *mailchimpstandin.Server, apiKey string) connectors.Connector {
	t.Helper()
	file := filepath.Join(t.TempDir(), "mailchimp-key")
	if err := os.WriteFile(file, []byte(apiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := connectors.Open(mailchimp.Name, fmt.Appendf(nil, "api_key_file: %s\naudiences: [%s]\nbase_url: %s\ntimeout: 5s\n", file, strings.Join(audiences, ", "), mc.URL()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seed plants a subscribed member in every audience, with merge fields, a marketing
// permission, tags and activity.
func (e *env) seed(t *testing.T, events int) connectors.Subject {
	t.Helper()
	n := e.seq.Add(1)
	email := fmt.Sprintf("Ada.Member%d@Example.com", n)
	for _, a := range audiences {
		e.mc.Put(a, mailchimpstandin.Member{
			EmailAddress: email, Status: "subscribed",
			MergeFields:          map[string]any{"FNAME": "Ada", "LNAME": fmt.Sprintf("Member%d", n), "PHONE": "+447700900123"},
			MarketingPermissions: []mailchimpstandin.MarketingPermission{{ID: "perm-email", Text: "Email", Enabled: true}},
			Tags:                 []mailchimpstandin.Tag{{Name: "regular"}, {Name: "colour"}},
		})
		acts := make([]mailchimpstandin.Activity, events)
		for i := range acts {
			acts[i] = mailchimpstandin.Activity{Type: "open", CreatedAt: "2026-11-01T10:00:00Z", CampaignID: fmt.Sprintf("c%d", i), CampaignTitle: "November offers"}
		}
		e.mc.AddActivity(a, email, acts...)
	}
	return connectors.Subject{Email: email}
}

func (e *env) held(s connectors.Subject) bool {
	for _, a := range audiences {
		if _, ok := e.mc.Member(a, s.Email); ok {
			return true
		}
	}
	return false
}

func task(key string, s connectors.Subject, params map[string]any) connectors.Task {
	return connectors.Task{Key: key, RequestID: key, TenantID: "salon", Subject: s, Params: params}
}

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Features{
		Capabilities:    mailchimp.Capabilities,
		LargeResultRows: 2500, // three pages of activity
		InvalidParams:   map[string]any{"no_such_option": 1},
		RectifyChanges:  map[string]any{"first_name": "Eastfold"},
	}, func(t *testing.T) connectortest.Fixture {
		e := newEnv(t)
		return connectortest.Fixture{
			Connector:       e.conn,
			Seed:            func(t *testing.T) connectors.Subject { return e.seed(t, 3) },
			SeedLarge:       func(t *testing.T, n int) connectors.Subject { return e.seed(t, n) },
			HasPersonalData: func(t *testing.T, s connectors.Subject) bool { return e.held(s) },
			Disconnect:      func(t *testing.T) { e.mc.Close() },
		}
	})
}

// getMember asks the stand-in over HTTP, as any Mailchimp client would.
func getMember(t *testing.T, mc *mailchimpstandin.Server, audience, email string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, mc.URL()+"/lists/"+audience+"/members/"+mailchimpstandin.Hash(email), nil)
	req.SetBasicAuth("anystring", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestSecondEraseIsANoOpThatSucceeds(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t, 2)
	ctx := context.Background()
	first, err := e.conn.(connectors.Eraser).Erase(ctx, task("req-1/mailchimp/erase", s, nil))
	if err != nil || first.AlreadyApplied || first.Deleted["members"] != int64(len(audiences)) {
		t.Fatalf("first erase = %+v, %v; want members deleted from both audiences", first, err)
	}
	for _, a := range audiences {
		status, body := getMember(t, e.mc, a, s.Email)
		if status != http.StatusNotFound || body["title"] != "Resource Not Found" {
			t.Fatalf("member of %s after erase: %d %v, want 404 Resource Not Found", a, status, body)
		}
		if !e.mc.Forgotten(a, s.Email) {
			t.Fatalf("member of %s was not deleted permanently", a)
		}
	}
	// A second erase, by a new request: Mailchimp answers 404, which is done.
	second, err := e.conn.(connectors.Eraser).Erase(ctx, task("req-2/mailchimp/erase", s, nil))
	if err != nil || !second.AlreadyApplied || second.Subjects != first.Subjects || len(second.Deleted) != 0 {
		t.Fatalf("second erase = %+v, %v; want success, already applied, nothing deleted", second, err)
	}
	if n := e.mc.Calls("POST /3.0/lists/{list}/members/{hash}/actions/delete-permanent"); n != 2*len(audiences) {
		t.Fatalf("delete-permanent called %d times, want one per audience per erase (%d)", n, 2*len(audiences))
	}
	// The address is forgotten: adding it again is refused, as Mailchimp refuses it.
	req, _ := http.NewRequest(http.MethodPost, e.mc.URL()+"/lists/"+audiences[0]+"/members", strings.NewReader(`{"email_address":"`+s.Email+`","status":"subscribed"}`))
	req.SetBasicAuth("anystring", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var problem map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&problem)
	if resp.StatusCode != http.StatusBadRequest || problem["title"] != "Forgotten Email Not Subscribed" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("re-adding a forgotten address: %d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), problem)
	}
	for _, k := range []string{"type", "title", "status", "detail", "instance"} {
		if _, ok := problem[k]; !ok {
			t.Fatalf("problem document without %s: %v", k, problem)
		}
	}
}

func TestObjectionUnsubscribesAtOnce(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t, 0)
	ctx := context.Background()
	r := e.conn.(connectors.Restricter)
	objection := map[string]any{"purpose": "marketing"}
	res, err := r.Restrict(ctx, task("req-1/mailchimp/restrict", s, objection))
	if err != nil || !res.Restricted || res.Rows != int64(len(audiences)) || res.AlreadyApplied {
		t.Fatalf("objection = %+v, %v", res, err)
	}
	for _, a := range audiences {
		if status, body := getMember(t, e.mc, a, s.Email); status != http.StatusOK || body["status"] != "unsubscribed" {
			t.Fatalf("member of %s right after the objection: %d, status %v; want unsubscribed", a, status, body["status"])
		}
	}
	if res, err := r.Restrict(ctx, task("req-1/mailchimp/restrict", s, objection)); err != nil || !res.AlreadyApplied {
		t.Fatalf("objection again = %+v, %v; want already applied", res, err)
	}
	if _, err := r.Restrict(ctx, task("req-2/mailchimp/restrict", s, map[string]any{"purpose": "marketing", "lift": true})); !connectors.IsPermanent(err) {
		t.Fatalf("lifting an objection: want a permanent error, got %v", err)
	}
}

func TestRestrictArchivesAndLiftRestoresTheStatus(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t, 0)
	ctx := context.Background()
	r := e.conn.(connectors.Restricter)
	if res, err := r.Restrict(ctx, task("req-1/mailchimp/restrict", s, nil)); err != nil || res.Rows != int64(len(audiences)) {
		t.Fatalf("restrict = %+v, %v", res, err)
	}
	if m, _ := e.mc.Member(audiences[0], s.Email); m.Status != "archived" {
		t.Fatalf("restricted member has status %q, want archived", m.Status)
	}
	if res, err := r.Restrict(ctx, task("req-2/mailchimp/restrict", s, map[string]any{"lift": true})); err != nil || res.Restricted {
		t.Fatalf("lift = %+v, %v", res, err)
	}
	m, _ := e.mc.Member(audiences[0], s.Email)
	if m.Status != "subscribed" {
		t.Fatalf("after lifting, status %q, want subscribed again", m.Status)
	}
	for _, tg := range m.Tags {
		if strings.HasPrefix(tg.Name, "lethe-") {
			t.Fatalf("the restriction's tag %q stayed after lifting", tg.Name)
		}
	}
}

func TestRectifyChangesTheAddressOnce(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t, 0)
	ctx := context.Background()
	changes := map[string]any{"changes": map[string]any{"email": "ada.new@example.com", "last_name": "Lovelace", "city": "Eastfold"}}
	res, err := e.conn.(connectors.Rectifier).Rectify(ctx, task("req-1/mailchimp/rectify", s, changes))
	if err != nil || res.Updated["members"] != int64(len(audiences)) {
		t.Fatalf("rectify = %+v, %v", res, err)
	}
	if e.held(s) {
		t.Fatal("the old address is still a member")
	}
	m, ok := e.mc.Member(audiences[1], "ada.new@example.com")
	if !ok || m.MergeFields["LNAME"] != "Lovelace" {
		t.Fatalf("member at the new address: %v %+v", ok, m)
	}
	if res, err := e.conn.(connectors.Rectifier).Rectify(ctx, task("req-1/mailchimp/rectify", s, changes)); err != nil || !res.AlreadyApplied {
		t.Fatalf("rectify replayed = %+v, %v; want already applied", res, err)
	}
}

func TestRateLimitIsRetriedAfterRetryAfter(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t, 0)
	e.mc.Throttle(1, 7*time.Second)
	_, err := e.conn.(connectors.Eraser).Erase(context.Background(), task("req-1/mailchimp/erase", s, nil))
	if err == nil || connectors.IsPermanent(err) {
		t.Fatalf("erase answered 429: want a retryable error, got %v", err)
	}
	if d, ok := connectors.RetryDelay(err); !ok || d != 7*time.Second {
		t.Fatalf("retry delay = %v, %v; want Retry-After's 7s", d, ok)
	}
	// One attempt per call: the connector does not loop; the runner's retry does the rest.
	if n := e.mc.Calls("POST /3.0/lists/{list}/members/{hash}/actions/delete-permanent"); n != 1 {
		t.Fatalf("delete-permanent called %d times, want 1", n)
	}
	if _, err := e.conn.(connectors.Eraser).Erase(context.Background(), task("req-1/mailchimp/erase", s, nil)); err != nil {
		t.Fatalf("erase after the wait: %v", err)
	}
	if e.held(s) {
		t.Fatal("the member remains after the retried erase")
	}
}

func TestInvalidKeyIsPermanentAndNamesTheSetting(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t, 0)
	t.Setenv("SALON_MAILCHIMP_KEY", "ffffffffffffffffffffffffffffffff-us6")
	c, err := connectors.Open(mailchimp.Name, fmt.Appendf(nil, "api_key_env: SALON_MAILCHIMP_KEY\naudiences: [%s]\nbase_url: %s\n", audiences[0], e.mc.URL()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, call := range map[string]func() error{
		"check": func() error { return c.Check(context.Background()) },
		"erase": func() error {
			_, err := c.(connectors.Eraser).Erase(context.Background(), task("req-1/mailchimp/erase", s, nil))
			return err
		},
	} {
		err := call()
		if !connectors.IsPermanent(err) {
			t.Fatalf("%s with an invalid key: want a permanent error, got %v", name, err)
		}
		if !strings.Contains(err.Error(), "api_key_env SALON_MAILCHIMP_KEY") || !strings.Contains(err.Error(), "401 API Key Invalid") {
			t.Fatalf("%s with an invalid key: the error does not name the setting and the answer: %v", name, err)
		}
	}
	if !e.held(s) {
		t.Fatal("a refused erase removed the member")
	}
	// A key for another datacenter is refused by the stand-in as by Mailchimp.
	if err := open(t, e.mc, "0123456789abcdef0123456789abcdef-us1").Check(context.Background()); !connectors.IsPermanent(err) {
		t.Fatalf("check with another datacenter's key: want permanent, got %v", err)
	}
}

func TestCheckNamesAMissingAudience(t *testing.T) {
	e := newEnv(t)
	if err := e.conn.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	mc := mailchimpstandin.New(key)
	defer mc.Close()
	mc.AddList(audiences[0], "only one")
	err := open(t, mc, key).Check(context.Background())
	if !connectors.IsPermanent(err) || !strings.Contains(err.Error(), `audiences[1]: mailchimp has no audience "f6g7h8i9j0"`) {
		t.Fatalf("check with a missing audience: %v", err)
	}
}

func TestErrorsCarryNoPersonalData(t *testing.T) {
	e := newEnv(t)
	a, b := e.seed(t, 0), e.seed(t, 0)
	ctx := context.Background()
	if _, err := e.conn.(connectors.Eraser).Erase(ctx, task("req-1/mailchimp/erase", b, nil)); err != nil {
		t.Fatal(err)
	}
	// Renaming a to b's forgotten address: Mailchimp's answer quotes it in its detail.
	_, err := e.conn.(connectors.Rectifier).Rectify(ctx, task("req-2/mailchimp/rectify", a, map[string]any{"changes": map[string]any{"email": b.Email}}))
	if !connectors.IsPermanent(err) {
		t.Fatalf("renaming to a forgotten address: want permanent, got %v", err)
	}
	for _, pd := range []string{strings.ToLower(a.Email), strings.ToLower(b.Email), mailchimpstandin.Hash(a.Email), mailchimpstandin.Hash(b.Email)} {
		if strings.Contains(strings.ToLower(err.Error()), pd) {
			t.Fatalf("error %q carries personal data", err)
		}
	}
	e.mc.Close()
	_, err = e.conn.(connectors.Accessor).Access(ctx, task("req-3/mailchimp/access", a, nil), nil)
	if err == nil || strings.Contains(err.Error(), mailchimpstandin.Hash(a.Email)) {
		t.Fatalf("error of a lost connection: %v", err)
	}
}

func TestConfigIsValidatedByName(t *testing.T) {
	for yaml, want := range map[string]string{
		"audiences: [x]":                                               "exactly one of api_key_env and api_key_file is required",
		"api_key_env: K":                                               "audiences: at least one audience",
		"api_key_env: K\naudiences: [a, a]":                            `audiences[1]: "a" listed twice`,
		"api_key_env: K\naudiences: [a]\nbase_url: ftp://x":            "base_url",
		"api_key_env: K\naudiences: [a]\nmerge_fields: {city: city}":   "merge_fields.city",
		"api_key_env: K\naudiences: [a]\nregion: us6":                  "field region not found",
		"api_key_env: K\naudiences: [a]\ntimeout: 0s":                  "timeout must be positive",
		"api_key_env: K\naudiences: [a]\nmerge_fields: {email: EMAIL}": "merge_fields: email",
	} {
		_, err := connectors.Open(mailchimp.Name, []byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: got %v, want an error containing %q", yaml, err, want)
		}
	}
	t.Setenv("NO_DC_KEY", "0123456789abcdef")
	if _, err := connectors.Open(mailchimp.Name, []byte("api_key_env: NO_DC_KEY\naudiences: [a]")); err == nil || !strings.Contains(err.Error(), "api_key_env NO_DC_KEY has no datacenter suffix") {
		t.Errorf("a key without datacenter and no base_url: %v", err)
	}
}
