package e2e_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/deploy/demo"
)

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// Two `lethe serve` processes against one PostgreSQL share every rate limit: a subject's
// submissions spread over both are refused once their sum reaches the budget.
func TestTwoServeProcessesShareTheRateLimits(t *testing.T) {
	s := newStack(t)
	var bases []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		s.Env["LETHE_HTTP_ADDR"] = addr
		s.start("serve")
		bases = append(bases, "http://"+addr)
	}
	jar, _ := cookiejar.New(nil) // cookies ignore the port: one browser for both processes
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, b := range bases {
		awaitReady(ctx, t, c, b)
	}
	page := get(t, c, bases[0]+"/myaccount")
	m := csrfInput.FindStringSubmatch(page)
	require.NotNil(t, m, "the start page has a CSRF token")

	budget := s.Cfg.Limits.Submit.Subject.N
	accepted, refusedBy := 0, map[string]int{}
	for i := range 4 * budget {
		base := bases[i%2]
		form := url.Values{"csrf_token": {m[1]}, "type": {"access"}, "email": {demo.ClearCustomerEmail}}
		req, err := http.NewRequest(http.MethodPost, base+"/myaccount/requests", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		res, err := c.Do(req)
		require.NoError(t, err)
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		switch res.StatusCode {
		case http.StatusSeeOther:
			accepted++
		case http.StatusTooManyRequests:
			refusedBy[base]++
			assert.NotEmpty(t, res.Header.Get("Retry-After"))
		default:
			t.Fatalf("submission %d to %s: %d %s", i+1, base, res.StatusCode, raw)
		}
	}
	assert.Equal(t, budget, accepted, "submissions accepted by both processes together")
	assert.Len(t, refusedBy, 2, "each process refuses once the shared budget is spent")
}

func awaitReady(ctx context.Context, t *testing.T, c *http.Client, base string) {
	t.Helper()
	for {
		res, err := c.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lethe serve at %s never became ready (last: %v)", base, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	res, err := c.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", u, raw)
	return string(raw)
}
