package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/requests"
)

// FuzzReadForm: the MyAccount start form is the one page anyone can post to. Any body gets
// either a list of fields to fix, each with a message, or a request that the request rules
// accept as it is: the subject is never shown the catch-all "could not accept" error for
// something the form could have named.
func FuzzReadForm(f *testing.F) {
	f.Add("type=access&email=nora%40example.com")
	f.Add("type=rectification&email=nora%40example.com&phone=%2B44+7700+900123&change-last_name=Doe")
	f.Add("type=erasure&email=Nora+%3Cnora%40example.com%3E&customer_id=C-1")
	f.Add("type=access&email=nora%40example.com&phone=%C2%A0%2B447700900123")
	f.Add("type=restriction&email=a%40b&change-city=x")
	f.Add("type=%00&email=%ff%fe&customer_id=" + strings.Repeat("x", 65))
	f.Add("email=a%40example.com&email=b%40example.com&type=access&type=erasure")
	f.Add("%zz")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	svc := &requests.Service{Cfg: config.Config{Tenants: []config.Tenant{{ID: "salon", Regime: "gdpr", Country: "DE", TimeZone: "Europe/Berlin"}}},
		Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/privacy/salon/requests", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		form, errs := readForm(r)
		for _, e := range errs {
			if e.Field == "" || e.Message == "" {
				t.Fatalf("a field error without field or message: %+v", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		sub := form.submission("salon")
		if err := svc.Validate(&sub); err != nil {
			vals, _ := url.ParseQuery(body)
			t.Fatalf("the form accepted what the request rules refuse (%v): %q", err, vals)
		}
	})
}
