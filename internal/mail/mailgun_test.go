package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"
)

// tap records the form of every API call on its way to the server. The mock server keeps
// recipients and subjects but not bodies, tags or variables, so those are read from here.
type tap struct {
	next  http.RoundTripper
	mu    sync.Mutex
	forms []url.Values
	urls  []*url.URL
	// The mock server updates its tag list outside its lock, so calls reach it one at a time;
	// Lethe's side of concurrent sends still runs concurrently.
	serial sync.Mutex
}

func (t *tap) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.urls = append(t.urls, req.URL)
	t.mu.Unlock()
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		cp := req.Clone(req.Context())
		cp.Body = io.NopCloser(bytes.NewReader(body))
		if err := cp.ParseMultipartForm(1 << 20); err == nil {
			t.mu.Lock()
			t.forms = append(t.forms, url.Values(cp.MultipartForm.Value))
			t.mu.Unlock()
		}
	}
	t.serial.Lock()
	defer t.serial.Unlock()
	return t.next.RoundTrip(req)
}

// formTo returns the recorded form of the one message sent to addr.
func (t *tap) formTo(tb testing.TB, addr string) url.Values {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	var found []url.Values
	for _, f := range t.forms {
		if f.Get("to") == addr {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("%d messages recorded to one recipient, want 1", len(found))
	}
	return found[0]
}

func mockSender(t *testing.T) (*mail.Mailgun, mailgun.MockServer, *tap) {
	t.Helper()
	srv := mailgun.NewMockServer()
	t.Cleanup(srv.Stop)
	tp := &tap{next: http.DefaultTransport}
	m, err := mail.NewMailgun(mail.Config{
		Domain: "mg.lethe.test", APIKey: "test-key", APIBase: srv.URL(),
		From: "privacy@mg.lethe.test", HTTPClient: &http.Client{Transport: tp},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, srv, tp
}

// accepted returns the mock's stored event for a message ID.
func accepted(t *testing.T, srv mailgun.MockServer, id string) *events.Accepted {
	t.Helper()
	for _, e := range srv.Events() {
		if a, ok := e.(*events.Accepted); ok && e.GetID() == id {
			return a
		}
	}
	t.Fatalf("the mock server stored no message with the returned ID")
	return nil
}

func TestSendEveryKindThroughMockServer(t *testing.T) {
	m, srv, tp := mockSender(t)
	for _, k := range mail.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			n := notice(k, "alpha")
			n.To = fmt.Sprintf("nora.%s@example.com", k) // one recipient per kind, to find each form
			id, err := m.Send(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			ev := accepted(t, srv, id)
			if ev.Recipient != n.To || ev.Message.Headers.To != n.To {
				t.Errorf("stored recipient = %q / %q, want %q", ev.Recipient, ev.Message.Headers.To, n.To)
			}
			if ev.Message.Headers.Subject != wantSubject[k] {
				t.Errorf("stored subject = %q, want %q", ev.Message.Headers.Subject, wantSubject[k])
			}
			if want := `"Salon Example" <privacy@mg.lethe.test>`; ev.Message.Headers.From != want {
				t.Errorf("stored from = %q, want %q", ev.Message.Headers.From, want)
			}

			f := tp.formTo(t, n.To)
			for key, v := range shown(n) {
				if !strings.Contains(f.Get("text"), v) {
					t.Errorf("text body lacks Data.%s", key)
				}
				if !strings.Contains(f.Get("html"), html.EscapeString(v)) {
					t.Errorf("HTML body lacks Data.%s", key)
				}
			}
			if got := f["o:tag"]; len(got) != 1 || got[0] != string(k) {
				t.Errorf("tags = %q, want [%s]", got, k)
			}
			wantID := "R-ALPHA-7"
			if k == mail.KindBreachNotification || k == mail.KindBreachClockReminder || k == mail.KindBreachClockEscalation {
				wantID = "" // not about a request
			}
			if got := f.Get("v:" + mail.RequestIDVariable); got != wantID {
				t.Errorf("request id variable = %q, want %q", got, wantID)
			}
			if got := f.Get("h:Reply-To"); got != salon.ContactEmail {
				t.Errorf("reply-to = %q, want the tenant's contact", got)
			}
		})
	}
}

func TestSendKeepsTwoSubjectsApart(t *testing.T) {
	m, srv, tp := mockSender(t)
	for _, k := range mail.Kinds() {
		a, b := notice(k, "alpha"), notice(k, "bravo")
		a.To, b.To = "alpha-"+string(k)+"@example.com", "bravo-"+string(k)+"@example.com"
		ids := make([]string, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, n := range []mail.Notice{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); ids[i], errs[i] = m.Send(context.Background(), n) }()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
		for i, n := range []mail.Notice{a, b} {
			own, other := "alpha", "bravo"
			if i == 1 {
				own, other = other, own
			}
			if got := accepted(t, srv, ids[i]).Recipient; got != n.To {
				t.Errorf("%s: message %d went to the wrong recipient", k, i)
			}
			f := tp.formTo(t, n.To)
			all := strings.ToLower(f.Get("subject") + f.Get("text") + f.Get("html") + f.Get("v:"+mail.RequestIDVariable))
			if strings.Contains(all, other) {
				t.Errorf("%s message for %s holds %s's data", k, own, other)
			}
			if !strings.Contains(all, own) {
				t.Errorf("%s message for %s lacks its own data", k, own)
			}
		}
	}
}

func TestRegionPicksAPIBase(t *testing.T) {
	for _, c := range []struct{ region, base, host string }{
		{"us", "https://api.mailgun.net/v3", "api.mailgun.net"},
		{"eu", "https://api.eu.mailgun.net/v3", "api.eu.mailgun.net"},
	} {
		// The transport answers in place of Mailgun, so the test proves where the request went
		// without leaving the machine.
		tp := &tap{next: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"id":"<x@mg>","message":"Queued"}`))}, nil
		})}
		m, err := mail.NewMailgun(mail.Config{Domain: "mg.example.com", APIKey: "k", Region: c.region, From: "privacy@mg.example.com", HTTPClient: &http.Client{Transport: tp}})
		if err != nil {
			t.Fatal(err)
		}
		if m.APIBase() != c.base {
			t.Errorf("region %s: API base = %s, want %s", c.region, m.APIBase(), c.base)
		}
		if _, err := m.Send(context.Background(), notice(mail.KindCompletion, "alpha")); err != nil {
			t.Fatal(err)
		}
		if len(tp.urls) != 1 || tp.urls[0].Host != c.host || tp.urls[0].Path != "/v3/mg.example.com/messages" {
			t.Errorf("region %s: sent to %v, want https://%s/v3/mg.example.com/messages", c.region, tp.urls, c.host)
		}
	}
	m, err := mail.NewMailgun(mail.Config{Domain: "mg.example.com", APIKey: "k", Region: "eu", APIBase: "http://127.0.0.1:9/v3", From: "p@mg.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if m.APIBase() != "http://127.0.0.1:9/v3" {
		t.Errorf("api_base did not override the region: %s", m.APIBase())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestConfigErrorsNameTheSetting(t *testing.T) {
	good := mail.Config{Domain: "mg.example.com", APIKey: "key-s3cret", Region: "eu", From: "privacy@mg.example.com"}
	if _, err := mail.NewMailgun(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, c := range []struct {
		edit    func(*mail.Config)
		setting string
	}{
		{func(c *mail.Config) { c.Domain = "" }, "mail.domain"},
		{func(c *mail.Config) { c.Domain = "https://mg.example.com" }, "mail.domain"},
		{func(c *mail.Config) { c.APIKey = " " }, "mail.api_key"},
		{func(c *mail.Config) { c.Region = "" }, "mail.region"},
		{func(c *mail.Config) { c.Region = "ap" }, "mail.region"},
		{func(c *mail.Config) { c.APIBase = "http://localhost:8080" }, "mail.api_base"},
		{func(c *mail.Config) { c.APIBase = "ftp://localhost/v3" }, "mail.api_base"},
		{func(c *mail.Config) { c.APIBase = "http://localhost/v3"; c.Region = "mars" }, "mail.region"},
		{func(c *mail.Config) { c.From = "" }, "mail.from"},
		{func(c *mail.Config) { c.From = "privacy at example" }, "mail.from"},
	} {
		cfg := good
		c.edit(&cfg)
		_, err := mail.NewMailgun(cfg)
		if err == nil || !strings.Contains(err.Error(), c.setting) {
			t.Errorf("%+v: err = %v, want one naming %s", cfg, err, c.setting)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q repeats the API key", err)
		}
	}
}

// failing answers every API call with status and headers, and a body that quotes the
// recipient, as Mailgun's error messages may.
func failing(t *testing.T, status int, header http.Header) (*mail.Mailgun, *atomic.Int32) {
	t.Helper()
	calls := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":"'to' parameter is not valid: %s"}`, r.FormValue("to"))
	}))
	t.Cleanup(srv.Close)
	m, err := mail.NewMailgun(mail.Config{Domain: "mg.example.com", APIKey: "k", APIBase: srv.URL + "/v3", From: "privacy@mg.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return m, calls
}

func TestSendClassifiesMailgunErrors(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		status     int
		header     http.Header
		permanent  bool
		retryAfter time.Duration // 0: none; otherwise at least this
	}{
		{400, nil, true, 0},
		{401, nil, true, 0},
		{404, nil, true, 0},
		{429, http.Header{"Retry-After": {"7"}}, false, 7 * time.Second},
		{429, nil, false, 0},
		{500, nil, false, 0},
		{503, http.Header{"Retry-After": {future}}, false, 80 * time.Second},
	} {
		m, calls := failing(t, c.status, c.header)
		n := notice(mail.KindAcknowledgement, "alpha")
		_, err := m.Send(context.Background(), n)
		if err == nil || calls.Load() != 1 {
			t.Fatalf("HTTP %d: err = %v after %d calls", c.status, err, calls.Load())
		}
		if mail.IsPermanent(err) != c.permanent {
			t.Errorf("HTTP %d: permanent = %v, want %v", c.status, mail.IsPermanent(err), c.permanent)
		}
		var te *mail.TransientError
		var pe *mail.PermanentError
		if c.permanent && (!errors.As(err, &pe) || pe.Status != c.status) || !c.permanent && (!errors.As(err, &te) || te.Status != c.status) {
			t.Errorf("HTTP %d: err = %#v does not carry the status", c.status, err)
		}
		d, ok := mail.RetryAfter(err)
		if ok != (c.retryAfter > 0) || d < c.retryAfter || d > c.retryAfter+15*time.Second {
			t.Errorf("HTTP %d: retry after = %v, %v; want %v", c.status, d, ok, c.retryAfter)
		}
		if strings.Contains(err.Error(), n.To) || strings.Contains(strings.ToLower(err.Error()), "alpha") {
			t.Errorf("HTTP %d: error %q holds personal data", c.status, err)
		}
	}
}

func TestSendNetworkErrorIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens any more
	m, err := mail.NewMailgun(mail.Config{Domain: "mg.example.com", APIKey: "k", APIBase: srv.URL + "/v3", From: "privacy@mg.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Send(context.Background(), notice(mail.KindAcknowledgement, "alpha"))
	var te *mail.TransientError
	if !errors.As(err, &te) || mail.IsPermanent(err) || te.Status != 0 {
		t.Errorf("err = %v, want a transient network error", err)
	}
}

func TestSendRefusesBadNoticesBeforeCallingMailgun(t *testing.T) {
	m, calls := failing(t, 200, nil)
	missing := notice(mail.KindDenial, "alpha")
	delete(missing.Data, "Reason")
	badTo := notice(mail.KindDenial, "alpha")
	badTo.To = "nora alpha at example"
	for name, n := range map[string]mail.Notice{"missing reason": missing, "bad recipient": badTo} {
		_, err := m.Send(context.Background(), n)
		if !mail.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
		if err != nil && strings.Contains(strings.ToLower(err.Error()), "alpha") {
			t.Errorf("%s: error %q holds personal data", name, err)
		}
	}
	var fe *mail.FieldError
	if _, err := m.Send(context.Background(), missing); !errors.As(err, &fe) || fe.Field != "Data.Reason" {
		t.Errorf("err = %v, want the Data.Reason field error inside", err)
	}
	if calls.Load() != 0 {
		t.Errorf("Mailgun was called %d times for notices that cannot be sent", calls.Load())
	}
}
