package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// New builds every part before anything uses it: the activities send mail through the one
// sender, whatever is called first, and the HTTP surface mounts each package's routes.
func TestStackIsBuiltBeforeUse(t *testing.T) {
	s := teststack.New(t, teststack.Options{Name: "app"})
	d, err := app.New(context.Background(), s.Cfg, s.Log, app.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	// The request services send no mail: a resent code goes through the workflow's activity.
	if d.Activities().Mail == nil {
		t.Fatal("the activities of a new stack have no mail sender")
	}
	if s.Deps.Activities().Mail != s.Deps.Mailbox {
		t.Fatal("the activities do not send through the stack's one mailbox")
	}
	if d.Activities().Texts == nil || d.Activities().Texts != d.Texts {
		t.Fatal("the activities do not text through the stack's one sender")
	}

	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", http.StatusOK},
		{"GET", "/readyz", http.StatusOK},
		{"GET", "/metrics", http.StatusOK},
		{"GET", "/v1/requests", http.StatusUnauthorized},
		{"GET", "/myaccount", http.StatusOK},
		{"POST", "/webhooks/mailgun", http.StatusBadRequest},
		{"GET", "/dev/mailbox", http.StatusOK},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, res.StatusCode, c.want)
		}
	}
}
