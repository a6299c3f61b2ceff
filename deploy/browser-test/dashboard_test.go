package browsertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/dashboard/dashtest"
	"github.com/lethe-privacy/lethe/internal/domain"
)

// TestDashboardInProcess walks the DPO's dashboard on an in-process stack: log in with the
// dpo token, filter the deadline list, open an erasure waiting for approval, approve it, watch
// its timeline until it completes, then the charts, the activity stream and a breach's clocks.
// Screenshots go to $LETHE_SCREENSHOTS/dashboard.
func TestDashboardInProcess(t *testing.T) {
	chromium(t)
	s := dashtest.Start(t)
	s.Seed(2, -2, domain.StatusInProgress)
	s.Seed(3, 2, domain.StatusIdentityPending)
	s.Seed(12, 12, domain.StatusInProgress)
	s.SeedHistory(90)
	erasure := s.Submit(domain.TypeErasure, connectors.Subject{Email: "dana.client@example.com"})
	s.AwaitStatus(erasure, domain.StatusPendingApproval)
	breach := s.OpenBreach()

	b := newSession(t, s.URL, "dashboard")
	b.do(chromedp.Navigate(s.URL + "/dashboard"))
	b.html()
	b.shot("login")
	b.do(chromedp.SendKeys(chromedp.CSS("#token"), s.Tokens["salon"]["dpo"]), chromedp.SendKeys(chromedp.CSS("#name"), "Dana DPO"),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)), chromedp.WaitReady(chromedp.CSS("#deadlines")))
	page := b.html()
	for _, want := range []string{`<tr class="overdue">`, `<tr class="soon">`, "2 days overdue", erasure} {
		if !strings.Contains(page, want) {
			t.Fatalf("the deadline list lacks %q:\n%s", want, page)
		}
	}
	b.shot("deadlines")

	// Filter: the erasures waiting for approval.
	b.do(chromedp.SetValue(chromedp.CSS("#f-type"), "erasure"), chromedp.SetValue(chromedp.CSS("#f-status"), "pending_approval"),
		chromedp.Click(chromedp.CSS(`.filters button[type="submit"]`)))
	// The list before the filter has #deadlines too: wait for the filtered page's address.
	for until := time.Now().Add(time.Minute); !strings.Contains(b.location(), "type=erasure"); {
		if time.Now().After(until) {
			t.Fatalf("the filtered list never loaded; the browser is at %s", b.location())
		}
		<-time.After(50 * time.Millisecond)
	}
	b.do(chromedp.WaitReady(chromedp.CSS("#deadlines")))
	if page = b.html(); !strings.Contains(page, erasure) || strings.Contains(page, "seed-") || !strings.Contains(b.location(), "type=erasure") {
		t.Fatalf("the filter did not narrow the list to the erasure at %s:\n%s", b.location(), page)
	}
	b.shot("filtered")

	// The request's page, then the approval, then its timeline as it completes.
	b.do(chromedp.Click(chromedp.CSS(`a[href="/dashboard/requests/`+erasure+`"]`)), chromedp.WaitReady(chromedp.CSS("#timeline")))
	b.html()
	b.shot("request")
	b.do(chromedp.Click(chromedp.CSS("#do-approve")), chromedp.WaitReady(chromedp.CSS("#done")))
	deadline := time.Now().Add(2 * time.Minute)
	for page = b.html(); !strings.Contains(page, "request.completed"); page = b.html() {
		if time.Now().After(deadline) {
			t.Fatalf("the timeline never showed the request completed:\n%s", page)
		}
		b.do(chromedp.Reload(), chromedp.WaitReady(chromedp.CSS("#timeline")))
	}
	if !strings.Contains(page, "by Dana DPO (dashboard:salon/dpo)") {
		t.Fatalf("the timeline does not show who approved:\n%s", page)
	}
	b.shot("approved-timeline")

	b.do(chromedp.Navigate(s.URL+"/dashboard/charts"), chromedp.WaitReady(chromedp.CSS("#by-type")))
	if page = b.html(); strings.Count(page, "<svg ") != 3 {
		t.Fatalf("the charts page has %d charts, want 3", strings.Count(page, "<svg "))
	}
	b.shot("charts")

	b.do(chromedp.Navigate(s.URL+"/dashboard/activity"), chromedp.WaitReady(chromedp.CSS("#events")))
	if page = b.html(); !strings.Contains(page, "Audit chain verified") || !strings.Contains(page, "Dana DPO (dashboard:salon/dpo)") {
		t.Fatalf("the activity stream lacks the chain state or the approval:\n%s", page)
	}
	b.shot("activity")

	// The breach's clocks: the countdown script changes the time left as it runs.
	b.do(chromedp.Navigate(s.URL+"/dashboard/breaches/"+breach), chromedp.WaitReady(chromedp.CSS(".countdown")))
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	first, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".countdown")))
	if err == nil {
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector(".countdown").textContent !== `+quoteJS(first)))
	}
	later, err2 := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".countdown")))
	if err != nil || err2 != nil {
		t.Fatalf("the countdown never moved from %q: %v, %v", first, err, err2)
	}
	if !strings.HasSuffix(later, " left") {
		t.Fatalf("the countdown reads %q", later)
	}
	b.shot("breach")
}

func quoteJS(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
