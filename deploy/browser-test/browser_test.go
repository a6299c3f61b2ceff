// Package browsertest walks MyAccount in headless Chromium, as a data subject would: submit an
// access request, read the code from the dev mailbox, verify, watch the status until it is
// completed, download the export, and find the customer's bookings in it. The pages carry no
// script and their Content-Security-Policy forbids any, so the walk is what a browser with
// JavaScript disabled gets (chromedp itself needs page scripting to find elements). Each step is saved as a PNG at a
// phone and a desktop size under $LETHE_SCREENSHOTS (default: a new temporary directory).
//
// Two tests run the same walk:
//
//	TestMyAccountOnLetheDev   against `lethe dev`: the one at $LETHE_DEV_URL, else one it starts
//	                          from $LETHE_BIN on free ports
//	TestMyAccountInProcess    against MyAccount on an in-process stack (see internal/web/webtest)
//
// Chromium comes from the distribution (Debian: apt-get install chromium); the tests never
// download a browser. Outside CI a missing browser skips; under CI=true it fails.
package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/localstack"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/internal/web/htmlcheck"
	"github.com/lethe-privacy/lethe/internal/web/webtest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startDev runs `lethe dev` ($LETHE_BIN, built by deploy/test.sh) on free ports in a fresh
// directory, as a newcomer would, and returns its URL; it is stopped with Ctrl-C's signal.
func startDev(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("LETHE_BIN")
	if bin == "" {
		testenv.Unavailable(t, "neither LETHE_DEV_URL nor LETHE_BIN is set: run deploy/test.sh, or start `lethe dev` and set LETHE_DEV_URL")
	}
	dir := t.TempDir()
	// lethe dev runs PostgreSQL as the postgres user when started as root: it must be able to
	// reach the data directory inside the test's private temporary directory.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"dev", "--dir", dir, "--temporal-bin", testenv.TemporalBinary(t)}
	for _, flag := range []string{"--postgres-port", "--temporal-port", "--temporal-ui-port", "--kafka-port"} {
		port, err := localstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, flag, fmt.Sprint(port))
	}
	port, err := localstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args = append(args, "--http", addr)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LETHE_KAFKA_BROKERS=") // dev's own in-process broker
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("lethe dev stderr:\n%s", log.String())
		}
	})
	ready := make(chan error, 1)
	var token string
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := adminToken.FindStringSubmatch(sc.Text()); m != nil {
				token = m[1]
			}
			if strings.HasPrefix(sc.Text(), "Try the API:") {
				ready <- nil
				io.Copy(io.Discard, out)
				return
			}
		}
		ready <- errors.New("lethe dev exited before it was running")
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%v:\n%s", err, log.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("lethe dev did not come up within 3 minutes:\n%s", log.String())
	}
	// The token lethe dev prints lets a newcomer try the API at once.
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/requests", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if token == "" || res.StatusCode != http.StatusOK {
		t.Fatalf("the admin token lethe dev printed (%q) does not open the API: %s", token, res.Status)
	}
	return "http://" + addr
}

var adminToken = regexp.MustCompile(`admin token: (\S+)\)`)

func TestMyAccountOnLetheDev(t *testing.T) {
	base := strings.TrimSuffix(os.Getenv("LETHE_DEV_URL"), "/")
	if base == "" {
		base = startDev(t)
	}
	files := walk(t, base, "dev")
	// The dev stack's database is not ours to read: the export must hold this customer, and
	// bookings that are theirs.
	customers := teststack.Rows(t, files, "database/customers.json")
	if len(customers) != 1 || customers[0]["email"] != demo.HealthNotesCustomerEmail {
		t.Fatalf("customers.json holds %d rows, want only %s", len(customers), demo.HealthNotesCustomerEmail)
	}
	if len(teststack.Rows(t, files, "database/bookings.json")) == 0 {
		t.Fatal("the export has no bookings; the demo customer has some")
	}
}

func TestMyAccountInProcess(t *testing.T) {
	chromium(t) // before the stack starts: no browser, no point
	s := webtest.Start(t)
	files := walk(t, s.URL, "inprocess")

	// Exactly the customer's bookings, as the demo database holds them.
	var want []string
	r, err := s.Demo.Query(context.Background(), `SELECT b.starts_at FROM bookings b JOIN customers c ON c.id = b.customer_id WHERE c.email = $1`, demo.HealthNotesCustomerEmail)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var at time.Time
		if err := r.Scan(&at); err != nil {
			t.Fatal(err)
		}
		want = append(want, at.UTC().Format(time.RFC3339))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range teststack.Rows(t, files, "database/bookings.json") {
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(b["starts_at"]))
		if err != nil {
			t.Fatalf("booking starts_at: %v", err)
		}
		got = append(got, at.UTC().Format(time.RFC3339))
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) == 0 || strings.Join(want, ",") != strings.Join(got, ",") {
		t.Fatalf("exported bookings %v, want %v", got, want)
	}
}

// chromium returns the distribution's Chromium.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "Chromium not found: install the distribution's package (Debian: apt-get install -y chromium)")
	return ""
}

// viewport is a screen the pages are photographed on.
type viewport struct {
	name          string
	width, height int64
	scale         float64
	mobile        bool
}

var viewports = []viewport{
	{"phone", 390, 844, 2, true},
	{"desktop", 1280, 900, 1, false},
}

// session is one browser tab walking MyAccount.
type session struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
	n     int
}

func newSession(t *testing.T, base, mode string) *session {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)

	shots := os.Getenv("LETHE_SCREENSHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "lethe-screenshots-"); err != nil {
			t.Fatal(err)
		}
	}
	shots = filepath.Join(shots, mode)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	s := &session{t: t, ctx: ctx, base: base, shots: shots}
	// The first action starts the browser, which lives as long as that call's context: it
	// gets no timeout.
	if err := chromedp.Do(ctx, s.emulate(viewports[0])); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return s
}

// do runs steps with a bound on each, so a stuck page fails the test instead of hanging it.
func (s *session) do(steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		s.t.Fatalf("browser: %v", err)
	}
}

func (s *session) emulate(v viewport) chromedp.Action[chromedp.Void] {
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(v.scale)}
	if v.mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	return chromedp.EmulateViewport(v.width, v.height, opts...)
}

// html returns the page as the browser holds it, checked for the accessibility basics.
func (s *session) html() string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	// Through chromedp's own query: a direct DOM.getDocument would renumber the nodes it tracks.
	doc, err := duringSwap(func() (string, error) { return chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))) })
	if err != nil {
		s.t.Fatalf("reading the page: %v", err)
	}
	htmlcheck.Check(s.t, doc)
	return doc
}

// location is the address of the page shown, from the tab's history (no page script needed).
func (s *session) location() string {
	s.t.Helper()
	h, err := duringSwap(func() (*page.GetNavigationHistoryResult, error) {
		return chromedp.Run(s.ctx, func(ctx context.Context, _ *chromedp.Target) (*page.GetNavigationHistoryResult, error) {
			r, err := chromedp.Call(ctx, page.GetNavigationHistory, cdp.Empty{})
			return &r, err
		})
	})
	if err != nil {
		s.t.Fatalf("reading the location: %v", err)
	}
	return h.Entries[h.CurrentIndex].URL
}

// duringSwap asks again while a page that has just replaced the one before is still swapping
// its document or target under the question (CDP -32000: no such node, context or attached
// page); asked again, it answers.
func duringSwap[T any](ask func() (T, error)) (T, error) {
	v, err := ask()
	for try := 0; err != nil && strings.Contains(err.Error(), "-32000") && try < 20; try++ {
		<-time.After(25 * time.Millisecond)
		v, err = ask()
	}
	return v, err
}

// shot saves the page at every viewport, then returns to the phone, where the walk happens.
func (s *session) shot(name string) {
	s.t.Helper()
	s.n++
	for _, v := range viewports {
		s.do(s.emulate(v))
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			s.t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(s.shots, fmt.Sprintf("%02d-%s-%s.png", s.n, name, v.name))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	s.do(s.emulate(viewports[0]))
}

var requestPath = regexp.MustCompile(`/myaccount/requests/([A-Za-z0-9_-]+)/verify$`)

// walk makes an access request for the demo customer with health notes and returns the files
// of the downloaded export.
func walk(t *testing.T, base, mode string) map[string][]byte {
	s := newSession(t, base, mode)
	email := demo.HealthNotesCustomerEmail
	deadline, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// 1. Choose the right and give the email address.
	s.do(chromedp.Navigate(base + "/myaccount"))
	page := s.html()
	if !strings.Contains(page, "Get a copy of your data") {
		t.Fatalf("the start page does not offer access:\n%s", page)
	}
	s.shot("start")
	s.do(chromedp.Click(chromedp.CSS(`label[for="type-access"]`)), chromedp.SendKeys(chromedp.CSS("#email"), email))
	s.shot("filled")

	// A form sent without choosing a right is explained, and the email stays.
	s.do(chromedp.Navigate(base+"/myaccount"), chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)), chromedp.WaitReady(chromedp.CSS(".error-summary")))
	page = s.html()
	if !strings.Contains(page, "Choose what you would like us to do") || !strings.Contains(page, `value="`+email+`"`) {
		t.Fatalf("the missing choice is not explained:\n%s", page)
	}
	s.shot("error-no-choice")
	s.do(chromedp.Click(chromedp.CSS(`label[for="type-access"]`)),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)), chromedp.WaitReady(chromedp.CSS("#code")))

	// 2. The verification step says only that a code was sent.
	m := requestPath.FindStringSubmatch(s.location())
	if m == nil {
		t.Fatalf("after submitting, the browser is at %s, not a verification page", s.location())
	}
	id := m[1]
	page = s.html()
	if strings.Contains(page, email) {
		t.Fatal("the verification page shows the email address")
	}
	s.shot("verify")

	// A wrong code is explained in the page.
	code, err := webtest.AwaitCode(deadline, base, email, id)
	if err != nil || code == "" {
		t.Fatalf("reading the code from the dev mailbox: %q, %v", code, err)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	s.do(chromedp.SendKeys(chromedp.CSS("#code"), wrong), chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
		chromedp.WaitReady(chromedp.CSS(".error-summary")))
	if page = s.html(); !strings.Contains(page, "That code is not right") {
		t.Fatalf("a wrong code is not explained:\n%s", page)
	}
	s.shot("wrong-code")

	// 3. The right code opens the status page.
	s.do(chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
		chromedp.WaitReady(chromedp.CSS("#status-title")))
	status := base + "/myaccount/requests/" + id
	if s.location() != status {
		t.Fatalf("after verifying, the browser is at %s, want %s", s.location(), status)
	}
	page = s.html()
	for _, want := range []string{"We must answer by", "We received your request", "You confirmed it is you"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the status page lacks %q:\n%s", want, page)
		}
	}
	s.shot("status")

	// 4. Look again, as the subject would, until the request is done.
	labels := []string{statusLabel(page)}
	for statusLabel(page) != "Done" {
		select {
		case <-deadline.Done():
			t.Fatalf("request %s never showed as done; statuses seen %v", id, labels)
		case <-time.After(300 * time.Millisecond):
		}
		s.do(chromedp.Reload())
		page = s.html()
		if l := statusLabel(page); l != labels[len(labels)-1] {
			labels = append(labels, l)
		}
	}
	t.Logf("statuses seen: %v", labels)
	for _, want := range []string{"We started working on your request", "Your request was completed", "Download your data"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the completed status page lacks %q:\n%s", want, page)
		}
	}
	s.shot("completed")

	// 5. Download the export as the browser does.
	return s.download(`a[href$="/export"]`)
}

var statusLabelRE = regexp.MustCompile(`<p class="status-label">([^<]*)</p>`)

func statusLabel(page string) string {
	m := statusLabelRE.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// download clicks the link and returns the files of the ZIP the browser saved.
func (s *session) download(sel string) map[string][]byte {
	s.t.Helper()
	dir := s.t.TempDir()
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: ptr(true),
		})
		return err
	}), chromedp.Click(chromedp.CSS(sel))); err != nil {
		s.t.Fatalf("starting the download: %v", err)
	}
	for ev, err := range progress {
		if err != nil {
			s.t.Fatalf("waiting for the download: %v", err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCanceled:
			s.t.Fatal("the browser canceled the download")
		case browser.DownloadProgressStateCompleted:
			raw, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				s.t.Fatal(err)
			}
			return teststack.Unzip(s.t, raw)
		}
	}
	s.t.Fatal("the download never completed")
	return nil
}

func ptr[T any](v T) *T { return &v }
