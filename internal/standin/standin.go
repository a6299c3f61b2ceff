// Package standin extends Mailgun's own stand-in (mailgun.NewMockServer) with what Lethe's
// breach notices need and the mock lacks: its messages route keeps only the first "to" of a
// message and ignores recipient-variables, and its events route does not filter. Server serves
// batch messages and the filtered events as Mailgun documents them and passes every other call
// (single messages included, which stay the mock's events) to the mock:
//
//   - POST /v3/{domain}/messages with several "to" or recipient-variables takes up to 1,000
//     "to" (more is HTTP 400, as Mailgun answers). With recipient-variables (a JSON object with an entry per recipient) each
//     recipient gets a copy of their own, only their address in To, %recipient.KEY% replaced in
//     subject, bodies and v: user variables; without them, one message goes to everyone and
//     every recipient sees every address (Exposed counts such copies). Each copy is one accepted
//     event of the message's id.
//   - GET /v3/{domain}/events filters on event, recipient and begin, in ascending order.
//
// Faults: LoseAnswers(n) accepts the next n messages and then drops the connection without an
// answer (a crash or timeout after Mailgun queued it); DropRequests(n) drops the next n without
// queueing them (lost on the way in); Refuse(n, status) answers the next n with an error status
// and queues nothing. CountOnly makes it count each recipient's copies instead of keeping them,
// for a million people; it then serves no events. Only tests and benchmarks use it.
package standin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"
)

// Copy is one recipient's copy of an accepted message.
type Copy struct {
	MessageID     string
	To            string   // the recipient
	VisibleTo     []string // the addresses in the To header the recipient sees
	Subject, Text string
	Variables     map[string]string // user variables, recipient variables substituted
	At            time.Time
}

// Server is the stand-in. Stop it when done.
type Server struct {
	// Now stamps accepted copies (default time.Now): a workflow test gives its skipped clock.
	Now   func() time.Time
	mock  mailgun.MockServer
	srv   *httptest.Server
	proxy *httputil.ReverseProxy

	mu     sync.Mutex
	copies []Copy
	counts map[string]int // by recipient, when counting only
	shown  int            // copies counted whose recipient saw another address
	sent   int
	ids    int
	lose   int
	drop   int
	refuse int
	status int
	delay  time.Duration
}

// New starts the stand-in in front of a new mailgun.NewMockServer.
func New() *Server {
	s := &Server{mock: mailgun.NewMockServer()}
	target, _ := url.Parse(strings.TrimSuffix(s.mock.URL(), "/v3"))
	s.proxy = httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/{domain}/messages", s.accept)
	mux.HandleFunc("GET /v3/{domain}/events", s.events)
	mux.Handle("/", s.proxy)
	s.srv = httptest.NewServer(mux)
	return s
}

// Mock is the mailgun mock behind the stand-in: single messages are its events.
func (s *Server) Mock() mailgun.MockServer { return s.mock }

// URL is the API base to configure (mail.api_base), ending in /v3.
func (s *Server) URL() string { return s.srv.URL + "/v3" }

// Stop stops the stand-in and the mock behind it.
func (s *Server) Stop() { s.srv.Close(); s.mock.Stop() }

// LoseAnswers makes the next n accepted messages go unanswered.
func (s *Server) LoseAnswers(n int) { s.mu.Lock(); s.lose = n; s.mu.Unlock() }

// DropRequests makes the next n messages go unanswered and unqueued (lost on the way in).
func (s *Server) DropRequests(n int) { s.mu.Lock(); s.drop = n; s.mu.Unlock() }

// Delay makes each batch message take d to be answered after it is queued, as Mailgun's own
// API takes a while with 1,000 recipients.
func (s *Server) Delay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// Refuse makes the next n messages fail with status, queueing nothing.
func (s *Server) Refuse(n, status int) { s.mu.Lock(); s.refuse, s.status = n, status; s.mu.Unlock() }

// CountOnly makes the stand-in count each recipient's copies from now on instead of keeping
// them: every message is still parsed and each copy rendered, but Copies and the events route
// see none of them. A million people's copies would take gigabytes.
func (s *Server) CountOnly() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]int{}
	}
}

// Reset forgets every message and copy accepted so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.copies, s.sent, s.shown = nil, 0, 0
	if s.counts != nil {
		s.counts = map[string]int{}
	}
}

// Copies returns every copy accepted so far.
func (s *Server) Copies() []Copy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Copy(nil), s.copies...)
}

// Messages counts the messages accepted (one per API call).
func (s *Server) Messages() int { s.mu.Lock(); defer s.mu.Unlock(); return s.sent }

// Count counts the copies accepted for each recipient.
func (s *Server) Count() map[string]int {
	out := map[string]int{}
	for _, c := range s.Copies() {
		out[c.To]++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for to, n := range s.counts {
		out[to] += n
	}
	return out
}

// Exposed counts copies whose recipient saw another recipient's address.
func (s *Server) Exposed() int {
	n := 0
	for _, c := range s.Copies() {
		if len(c.VisibleTo) > 1 {
			n++
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return n + s.shown
}

var placeholder = regexp.MustCompile(`%recipient\.([A-Za-z0-9_-]+)%`)

func (s *Server) accept(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
	if err != nil {
		answer(w, http.StatusRequestEntityTooLarge, "the message is too large")
		return
	}
	if err := parseForm(r, raw); err != nil {
		answer(w, http.StatusBadRequest, "the request is not a valid form")
		return
	}
	if len(r.Form["to"]) == 1 && r.FormValue("recipient-variables") == "" {
		// One recipient, no batch: the mock serves it as it always has (its Events list).
		r.Body, r.Form, r.PostForm, r.MultipartForm = io.NopCloser(bytes.NewReader(raw)), nil, nil, nil
		s.proxy.ServeHTTP(w, r)
		return
	}
	s.mu.Lock()
	if s.drop > 0 {
		s.drop--
		s.mu.Unlock()
		hangUp(w)
		return
	}
	if s.refuse > 0 {
		s.refuse--
		status := s.status
		s.mu.Unlock()
		answer(w, status, "refused by the stand-in")
		return
	}
	s.mu.Unlock()
	to := r.Form["to"]
	switch {
	case len(to) == 0:
		answer(w, http.StatusBadRequest, "'to' parameter is missing")
		return
	case len(to) > mailgun.MaxNumberOfRecipients:
		answer(w, http.StatusBadRequest, "Too many recipients: at most 1000 per message")
		return
	}
	for _, t := range to {
		if _, err := mail.ParseAddress(t); err != nil {
			answer(w, http.StatusBadRequest, "'to' parameter is not a valid address. please check documentation")
			return
		}
	}
	var rv map[string]map[string]any
	if raw := r.FormValue("recipient-variables"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &rv); err != nil {
			answer(w, http.StatusBadRequest, "recipient-variables must be a JSON object")
			return
		}
	}
	uv := map[string]string{}
	for k, vs := range r.Form {
		if name, ok := strings.CutPrefix(k, "v:"); ok && len(vs) > 0 {
			uv[name] = vs[0]
		}
	}
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	s.mu.Lock()
	s.ids++
	id := fmt.Sprintf("%d.%d@%s", now.UnixNano(), s.ids, r.PathValue("domain"))
	s.mu.Unlock()
	var copies []Copy
	for _, t := range to {
		addr, _ := mail.ParseAddress(t)
		vars := rv[t]
		sub := func(v string) string {
			if rv == nil {
				return v
			}
			return placeholder.ReplaceAllStringFunc(v, func(m string) string {
				return fmt.Sprint(vars[placeholder.FindStringSubmatch(m)[1]])
			})
		}
		c := Copy{MessageID: id, To: addr.Address, Subject: sub(r.FormValue("subject")), Text: sub(r.FormValue("text")),
			Variables: map[string]string{}, At: now, VisibleTo: []string{addr.Address}}
		if rv == nil {
			c.VisibleTo = to // one message to all: everyone sees everyone
		}
		for k, v := range uv {
			c.Variables[k] = sub(v)
		}
		copies = append(copies, c)
	}
	s.mu.Lock()
	if s.counts != nil {
		for _, c := range copies {
			s.counts[c.To]++
			if len(c.VisibleTo) > 1 {
				s.shown++
			}
		}
	} else {
		s.copies = append(s.copies, copies...)
	}
	s.sent++
	delay := s.delay
	lose := s.lose > 0
	if lose {
		s.lose--
	}
	s.mu.Unlock()
	time.Sleep(delay) // Mailgun's latency, not synchronisation
	if lose {
		hangUp(w) // queued, but the answer never arrives
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"id": "<" + id + ">", "message": "Queued. Thank you."})
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	items := []any{}
	if q.Get("page") != "end" {
		var begin time.Time
		if b := q.Get("begin"); b != "" {
			if t, err := time.Parse(time.RFC1123Z, b); err == nil {
				begin = t
			} else if f, err := strconv.ParseFloat(b, 64); err == nil {
				begin = time.Unix(0, int64(f*1e9))
			}
		}
		for _, c := range s.Copies() {
			if ev := q.Get("event"); ev != "" && ev != events.EventAccepted ||
				q.Get("recipient") != "" && !strings.EqualFold(q.Get("recipient"), c.To) || c.At.Before(begin.Truncate(time.Second)) {
				continue
			}
			a := events.Accepted{}
			a.Name, a.ID, a.Timestamp = events.EventAccepted, c.MessageID+"/"+c.To, mailgun.TimeToFloat(c.At)
			a.Recipient, a.Message.Headers.MessageID, a.Message.Headers.Subject = c.To, c.MessageID, c.Subject
			vars := map[string]any{}
			for k, v := range c.Variables {
				vars[k] = v
			}
			a.UserVariables = vars
			items = append(items, a)
		}
	}
	next := *r.URL
	nq := next.Query()
	nq.Set("page", "end")
	next.RawQuery = nq.Encode()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "paging": map[string]string{
		"next": s.srv.URL + next.RequestURI(), "first": s.srv.URL + r.URL.RequestURI()}})
}

// parseForm reads a url-encoded or multipart form into r.Form. Go's ReadForm allows at most
// 1,000 parts (GODEBUG multipartmaxparts), fewer than a batch of 1,000 "to" has; Mailgun takes
// it, so the parts are read one by one here.
func parseForm(r *http.Request, raw []byte) error {
	r.Body = io.NopCloser(bytes.NewReader(raw))
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return r.ParseForm()
	}
	r.Form = url.Values{}
	mr := multipart.NewReader(bytes.NewReader(raw), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		v, err := io.ReadAll(p)
		if err != nil {
			return err
		}
		r.Form.Add(p.FormName(), string(v))
	}
}

func hangUp(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
