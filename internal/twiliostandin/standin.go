// Package twiliostandin is a local Twilio for tests and lethe dev: exactly the Programmable
// Messaging endpoints the sms connector uses, as Twilio documents them.
//
//   - POST /2010-04-01/Accounts/{AccountSid}/Messages.json: a form with To, From or
//     MessagingServiceSid, and Body; answers 201 with the Message, status queued. Missing or
//     invalid fields get Twilio's codes (21604, 21603, 21602, 21211, 21617), and a recipient
//     who replied STOP to that sender gets 21610.
//   - GET /2010-04-01/Accounts/{AccountSid}/Messages.json: filtered by To and From, most
//     recent first, paged by PageSize (1 to 1000, default 50) with next_page_uri.
//   - DELETE /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json: 204; an unknown message is
//     404 (20404); one still queued, sending or receiving is refused with 20009.
//
// Every call needs HTTP Basic auth with the account SID and its auth token (else 401, 20003).
// Errors are Twilio's JSON body {code, message, more_info, status}. Throttle(n, after) answers
// the next n calls 429 (20429) with Retry-After, Unavailable(n, after) 503 (20503); Invalid(number)
// answers 21211 for a number, QueueFull(n) 21611 for the next n texts, and AnswerDelay holds a
// created message's answer back. An outbound message moves from queued through sending to
// delivered over Delivery (measured on Now, so a test controls it); one sent with a
// StatusCallback has its final status (delivered, or undelivered with 30003 for a number made
// Undeliverable) posted there, signed, once it is answered. Receive records an inbound text
// and posts it, signed with X-Twilio-Signature, to the number's webhook.
package twiliostandin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lethe-privacy/lethe/connectors/sms"
)

// Message is one message record as the stand-in holds it.
type Message struct {
	SID, From, To, Body, Direction, MessagingServiceSID string
	Created                                             time.Time
	// Status, when set, is fixed; else an outbound message's status follows Delivery.
	Status string
}

// Server is the stand-in. Start it with New; Stop ends it.
type Server struct {
	// Now is the stand-in's clock (default time.Now).
	Now func() time.Time
	// Delivery is how long an outbound message stays in progress (default 0: delivered at once).
	Delivery time.Duration
	// AnswerDelay is how long a created message's answer takes, after the message is recorded:
	// a sender that dies meanwhile has sent a text it never heard of.
	AnswerDelay time.Duration

	srv *httptest.Server

	mu        sync.Mutex
	accounts  map[string]string // account SID -> auth token
	messages  []*Message        // in creation order
	optedOut  map[[2]string]bool
	invalid   map[string]bool
	lost      map[string]bool // numbers whose texts end undelivered
	held      []func()        // status callbacks held back (HoldCallbacks)
	holding   bool
	posted    sync.WaitGroup
	webhooks  map[string]string // number -> inbound webhook URL
	throttle  int
	after     time.Duration
	outage    int
	full      int
	calls     map[string]int
	callbacks map[int]int
}

// New starts a stand-in with one account.
func New(accountSID, authToken string) *Server {
	s := &Server{accounts: map[string]string{accountSID: authToken}, optedOut: map[[2]string]bool{}, invalid: map[string]bool{}, lost: map[string]bool{},
		webhooks: map[string]string{}, calls: map[string]int{}, callbacks: map[int]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{account}/Messages.json", s.api("create", s.create))
	mux.HandleFunc("GET /2010-04-01/Accounts/{account}/Messages.json", s.api("list", s.list))
	mux.HandleFunc("DELETE /2010-04-01/Accounts/{account}/Messages/{file}", s.api("delete", s.remove))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	})
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the API base to configure (the sms connector's base_url).
func (s *Server) URL() string { return s.srv.URL }

// Stop stops the stand-in.
func (s *Server) Stop() { s.srv.Close() }

// Throttle makes the next n API calls answer 429 with Retry-After: after (whole seconds).
func (s *Server) Throttle(n int, after time.Duration) {
	s.mu.Lock()
	s.throttle, s.after = n, after
	s.mu.Unlock()
}

// Unavailable makes the next n API calls answer 503 (20503) with Retry-After: after.
func (s *Server) Unavailable(n int, after time.Duration) {
	s.mu.Lock()
	s.outage, s.after = n, after
	s.mu.Unlock()
}

// QueueFull makes the next n texts answer 400 with 21611, as Twilio does when the sender has
// more than 10 hours of texts queued.
func (s *Server) QueueFull(n int) { s.mu.Lock(); s.full = n; s.mu.Unlock() }

// Undeliverable makes texts to number end "undelivered" (error 30003) in their status callback.
func (s *Server) Undeliverable(number string) { s.mu.Lock(); s.lost[number] = true; s.mu.Unlock() }

// Invalid makes texts to number answer 21211, as Twilio does a number in E.164 form that is no
// phone's.
func (s *Server) Invalid(number string) { s.mu.Lock(); s.invalid[number] = true; s.mu.Unlock() }

// Calls counts the API calls by operation (create, list, delete), throttled ones included.
func (s *Server) Calls(op string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls[op] }

// SetWebhook makes Receive post texts sent to number to url, as Twilio's number setting does.
func (s *Server) SetWebhook(number, url string) { s.mu.Lock(); s.webhooks[number] = url; s.mu.Unlock() }

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Add records a message as if Twilio had sent or received it at created (seeding).
func (s *Server) Add(m Message) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.SID == "" {
		m.SID = newSID("SM")
	}
	if m.Direction == "" {
		m.Direction = "outbound-api"
	}
	if m.Created.IsZero() {
		m.Created = s.now()
	}
	s.messages = append(s.messages, &m)
	return m
}

// Messages returns the records involving number (as sender or recipient), or all with "".
func (s *Server) Messages(number string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if number == "" || m.From == number || m.To == number {
			out = append(out, *m)
		}
	}
	return out
}

// OptedOut reports whether number replied STOP to sender (and has not replied START since).
func (s *Server) OptedOut(number, sender string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.optedOut[[2]string{number, sender}]
}

// Receive records a text from a subject's number to one of the account's numbers, applies
// Twilio's STOP/START handling, and posts it signed to the number's webhook (if any),
// returning the webhook's status (0 without one).
func (s *Server) Receive(accountSID, from, to, body string) (int, error) {
	m := s.Add(Message{From: from, To: to, Body: body, Direction: "inbound", Status: "received"})
	form := url.Values{"MessageSid": {m.SID}, "SmsSid": {m.SID}, "SmsMessageSid": {m.SID}, "AccountSid": {accountSID},
		"From": {from}, "To": {to}, "Body": {body}, "NumMedia": {"0"}, "NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}}
	s.mu.Lock()
	switch sms.ReplyOf(url.Values{"Body": {body}}) {
	case sms.ReplyOptOut:
		s.optedOut[[2]string{from, to}] = true
		form.Set("OptOutType", "STOP")
	case sms.ReplyOptIn:
		delete(s.optedOut, [2]string{from, to})
		form.Set("OptOutType", "START")
	}
	hook, token := s.webhooks[to], s.accounts[accountSID]
	s.mu.Unlock()
	if hook == "" {
		return 0, nil
	}
	req, err := http.NewRequest(http.MethodPost, hook, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sms.Signature(token, hook, form))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("posting the inbound text to its webhook: %w", err)
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// api wraps a handler with authentication, throttling and the call count.
func (s *Server) api(op string, h func(w http.ResponseWriter, r *http.Request, account string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		account := r.PathValue("account")
		s.mu.Lock()
		s.calls[op]++
		throttled, down := s.throttle > 0, s.throttle == 0 && s.outage > 0
		if throttled {
			s.throttle--
		} else if down {
			s.outage--
		}
		after := s.after
		token, known := s.accounts[account]
		s.mu.Unlock()
		user, pass, ok := r.BasicAuth()
		if !ok || !known || user != account || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
			fail(w, http.StatusUnauthorized, 20003, "Authenticate")
			return
		}
		if throttled || down {
			w.Header().Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
			if throttled {
				fail(w, http.StatusTooManyRequests, 20429, "Too Many Requests")
			} else {
				fail(w, http.StatusServiceUnavailable, 20503, "Service Unavailable")
			}
			return
		}
		h(w, r, account)
	}
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

func (s *Server) create(w http.ResponseWriter, r *http.Request, account string) {
	if err := r.ParseForm(); err != nil {
		fail(w, http.StatusBadRequest, 20001, "The request body is not a valid form")
		return
	}
	to, from, service, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("MessagingServiceSid"), r.PostForm.Get("Body")
	sender := from
	if sender == "" {
		sender = service
	}
	s.mu.Lock()
	stopped, invalid := s.optedOut[[2]string{to, sender}], s.invalid[to]
	delay, full := s.AnswerDelay, s.full > 0
	if full {
		s.full--
	}
	s.mu.Unlock()
	switch {
	case to == "":
		fail(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
	case from == "" && service == "":
		fail(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
	case body == "":
		fail(w, http.StatusBadRequest, 21602, "Message body is required.")
	case !e164.MatchString(to) || invalid:
		fail(w, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: "+to)
	case from != "" && !e164.MatchString(from):
		fail(w, http.StatusBadRequest, 21212, "Invalid From Number (caller ID): "+from)
	case utf8.RuneCountInString(body) > 1600:
		fail(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
	case stopped:
		fail(w, http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient")
	case full:
		fail(w, http.StatusBadRequest, 21611, "This 'From' number has exceeded the maximum number of queued messages")
	default:
		m := s.Add(Message{From: from, To: to, Body: body, MessagingServiceSID: service})
		if delay > 0 {
			time.Sleep(delay) // Twilio's latency, after the message exists
		}
		writeJSON(w, http.StatusCreated, s.resource(account, &m))
		if cb := r.PostForm.Get("StatusCallback"); cb != "" {
			s.posted.Add(1)
			post := func() { s.postStatus(account, cb, m) }
			s.mu.Lock()
			if s.holding {
				s.held = append(s.held, post)
				post = nil
			}
			s.mu.Unlock()
			if post != nil {
				go post()
			}
		}
	}
}

// postStatus posts a text's final status to its StatusCallback, signed as Twilio signs it:
// delivered, or undelivered with ErrorCode 30003 for a number made Undeliverable.
func (s *Server) postStatus(account, callback string, m Message) {
	defer s.posted.Done()
	s.mu.Lock()
	token, lost := s.accounts[account], s.lost[m.To]
	s.mu.Unlock()
	form := url.Values{"MessageSid": {m.SID}, "SmsSid": {m.SID}, "AccountSid": {account}, "From": {m.From}, "To": {m.To},
		"MessageStatus": {"delivered"}, "SmsStatus": {"delivered"}, "ApiVersion": {"2010-04-01"}}
	if lost {
		form.Set("MessageStatus", "undelivered")
		form.Set("SmsStatus", "undelivered")
		form.Set("ErrorCode", "30003")
	}
	req, err := http.NewRequest(http.MethodPost, callback, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sms.Signature(token, callback, form))
	res, err := http.DefaultClient.Do(req)
	s.mu.Lock()
	if err == nil {
		res.Body.Close()
		s.callbacks[res.StatusCode]++
	} else {
		s.callbacks[0]++
	}
	s.mu.Unlock()
}

// HoldCallbacks holds status callbacks back until ReleaseCallbacks posts them, as when
// Twilio's callbacks are late.
func (s *Server) HoldCallbacks() { s.mu.Lock(); s.holding = true; s.mu.Unlock() }

// ReleaseCallbacks posts the callbacks held back, and those to come at once.
func (s *Server) ReleaseCallbacks() {
	s.mu.Lock()
	held := s.held
	s.held, s.holding = nil, false
	s.mu.Unlock()
	for _, post := range held {
		go post()
	}
}

// Callbacks counts the status callbacks posted by the HTTP status they were answered with (0:
// not answered), once every one posted so far has been.
func (s *Server) Callbacks() map[int]int {
	s.posted.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.callbacks)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, account string) {
	q := r.URL.Query()
	size := 50
	if v := q.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fail(w, http.StatusBadRequest, 20001, "PageSize must be between 1 and 1000")
			return
		}
		size = n
	}
	s.mu.Lock()
	var match []*Message
	for i := len(s.messages) - 1; i >= 0; i-- { // most recent first
		m := s.messages[i]
		if (q.Get("To") == "" || m.To == q.Get("To")) && (q.Get("From") == "" || m.From == q.Get("From")) {
			match = append(match, m)
		}
	}
	s.mu.Unlock()
	slices.SortStableFunc(match, func(a, b *Message) int { return b.Created.Compare(a.Created) })
	// The page token is the SID of the last message of the previous page.
	start := 0
	if tok := strings.TrimPrefix(q.Get("PageToken"), "PA"); tok != "" {
		start = slices.IndexFunc(match, func(m *Message) bool { return m.SID == tok }) + 1
	}
	pageNo, _ := strconv.Atoi(q.Get("Page"))
	end := min(start+size, len(match))
	items := []map[string]any{}
	for _, m := range match[start:end] {
		items = append(items, s.resource(account, m))
	}
	base := r.URL.Path
	uri := func(page int, token string) string {
		v := url.Values{}
		for _, k := range []string{"To", "From"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("PageSize", strconv.Itoa(size))
		v.Set("Page", strconv.Itoa(page))
		if token != "" {
			v.Set("PageToken", token)
		}
		return base + "?" + v.Encode()
	}
	var next any
	if end < len(match) {
		next = uri(pageNo+1, "PA"+match[end-1].SID)
	}
	var prev any
	if pageNo > 0 {
		prev = uri(pageNo-1, "")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"messages": items, "page": pageNo, "page_size": size, "start": start, "end": max(end-1, start),
		"uri": r.URL.RequestURI(), "first_page_uri": uri(0, ""), "next_page_uri": next, "previous_page_uri": prev,
	})
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request, account string) {
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	s.mu.Lock()
	i := slices.IndexFunc(s.messages, func(m *Message) bool { return m.SID == sid })
	if !ok || i < 0 {
		s.mu.Unlock()
		fail(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	switch s.status(s.messages[i]) {
	case "queued", "sending", "accepted", "scheduled", "receiving":
		s.mu.Unlock()
		fail(w, http.StatusConflict, 20009, "Cannot delete this resource before it is complete")
		return
	}
	s.messages = slices.Delete(s.messages, i, i+1)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// status is the message's status now (s.mu held or not needed: reads only m and the clock).
func (s *Server) status(m *Message) string {
	if m.Status != "" {
		return m.Status
	}
	age := s.now().Sub(m.Created)
	switch {
	case age < s.Delivery/2:
		return "queued"
	case age < s.Delivery:
		return "sending"
	}
	return "delivered"
}

// twilioTime is the RFC 2822 form Twilio gives dates in.
const twilioTime = "Mon, 02 Jan 2006 15:04:05 -0700"

func (s *Server) resource(account string, m *Message) map[string]any {
	status := s.status(m)
	var sent any
	if status != "queued" && status != "accepted" {
		sent = m.Created.Format(twilioTime)
	}
	var service any
	if m.MessagingServiceSID != "" {
		service = m.MessagingServiceSID
	}
	uri := "/2010-04-01/Accounts/" + account + "/Messages/" + m.SID
	return map[string]any{
		"sid": m.SID, "account_sid": account, "api_version": "2010-04-01", "body": m.Body, "from": m.From, "to": m.To,
		"status": status, "direction": m.Direction, "messaging_service_sid": service,
		"date_created": m.Created.Format(twilioTime), "date_updated": m.Created.Format(twilioTime), "date_sent": sent,
		"num_segments": strconv.Itoa(max(1, (utf8.RuneCountInString(m.Body)+152)/153)), "num_media": "0",
		"error_code": nil, "error_message": nil, "price": nil, "price_unit": "USD", "uri": uri + ".json",
		"subresource_uris": map[string]string{"media": uri + "/Media.json", "feedback": uri + "/Feedback.json"},
	}
}

func newSID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func fail(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{"code": code, "message": message,
		"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(code), "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
