// Package slackstandin is a local Slack for tests and lethe dev: slack-go's slacktest server,
// extended with the Web API methods Lethe uses that slacktest lacks or answers without keeping
// anything (chat.update, views.open, usergroups.users.list, and chat.postMessage and
// chat.postEphemeral kept per channel and timestamp), Socket Mode (SocketInteract), and with
// throttling on demand.
package slackstandin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/lethe-privacy/lethe/internal/slackmsg"
)

// Message is one message as the stand-in holds it, after any chat.update.
type Message struct {
	Channel string
	TS      string
	Text    string
	// Blocks is the Block Kit JSON as posted or last updated.
	Blocks json.RawMessage
	// Updates counts the chat.update calls it received.
	Updates int
}

// Ephemeral is a message shown to one user only.
type Ephemeral struct {
	Channel, User, Text string
}

// Server is the stand-in. Start it with New; URL is its Web API base.
type Server struct {
	*slacktest.Server

	mu         sync.Mutex
	sent       []Sent
	seq        int
	messages   []*Message
	ephemerals []Ephemeral
	views      []json.RawMessage
	groups     map[string][]string
	throttle   map[string]throttle
	calls      map[string]int
	socket     socketMode
}

type throttle struct {
	n     int
	after time.Duration
}

// New starts a stand-in; Stop ends it.
func New() *Server {
	s := &Server{groups: map[string][]string{}, throttle: map[string]throttle{}, calls: map[string]int{},
		socket: socketMode{connected: make(chan struct{}), acks: map[string]chan json.RawMessage{}}}
	s.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.limited("chat.postMessage", formed(s.postMessage)))
		c.Handle("/chat.update", s.limited("chat.update", formed(s.update)))
		c.Handle("/chat.postEphemeral", s.limited("chat.postEphemeral", formed(s.postEphemeral)))
		c.Handle("/views.open", s.limited("views.open", s.openView))
		c.Handle("/usergroups.users.list", s.limited("usergroups.users.list", formed(s.groupMembers)))
		c.Handle("/apps.connections.open", s.openConnection)
	})
	s.Start()
	return s
}

// URL is the Web API base to configure (slack.api_url).
func (s *Server) URL() string { return s.GetAPIURL() }

// SetGroup sets the members of a user group.
func (s *Server) SetGroup(id string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = users
}

// Throttle answers the next n calls of method with 429 and Retry-After.
func (s *Server) Throttle(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle[method] = throttle{n, retryAfter}
}

// Calls counts the calls of method, throttled ones included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Messages returns copies of the messages posted, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.messages))
	for _, m := range s.messages {
		out = append(out, *m)
	}
	return out
}

// Ephemerals returns the ephemeral messages posted, oldest first.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ephemeral(nil), s.ephemerals...)
}

// Views returns the modals opened (views.open's view JSON), oldest first.
func (s *Server) Views() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]json.RawMessage(nil), s.views...)
}

func (s *Server) limited(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[method]++
		t := s.throttle[method]
		refuse := t.n > 0
		if refuse {
			t.n--
			s.throttle[method] = t
		}
		s.mu.Unlock()
		if refuse {
			w.Header().Set("Retry-After", strconv.Itoa(int(t.after.Seconds())))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		h(w, r)
	}
}

// formed reads a Web API call's form for h.
func formed(h func(http.ResponseWriter, url.Values)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			var v url.Values
			if v, err = url.ParseQuery(string(body)); err == nil {
				h(w, v)
				return
			}
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Sent is one message body as Lethe sent it (a post, an update or an ephemeral), in order.
type Sent struct {
	Method, Text string
	Blocks       json.RawMessage
}

// Sent lists every message body received, updates too, so a test can check each version,
// not only what a message last showed.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// CheckSent checks every body received against Slack's limits and for an email address shown
// unmasked, naming the first that fails: the tests' guard that Lethe never posts personal data.
func (s *Server) CheckSent() error {
	for i, m := range s.Sent() {
		if e := slackmsg.UnmaskedEmail(m.Text); e != "" {
			return fmt.Errorf("slack: %s #%d shows an unmasked email address in its text", m.Method, i+1)
		}
		if len(m.Blocks) == 0 {
			continue
		}
		if err := slackmsg.CheckMessage(m.Blocks); err != nil {
			return fmt.Errorf("slack: %s #%d: %w", m.Method, i+1, err)
		}
	}
	return nil
}

// record keeps a body for Sent; the caller holds s.mu.
func (s *Server) record(method string, v url.Values) {
	s.sent = append(s.sent, Sent{Method: method, Text: v.Get("text"), Blocks: json.RawMessage(v.Get("blocks"))})
}

func (s *Server) postMessage(w http.ResponseWriter, v url.Values) {
	s.mu.Lock()
	s.record("chat.postMessage", v)
	s.seq++
	m := &Message{Channel: v.Get("channel"), TS: fmt.Sprintf("%d.%06d", time.Now().Unix(), s.seq), Text: v.Get("text"), Blocks: json.RawMessage(v.Get("blocks"))}
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (s *Server) update(w http.ResponseWriter, v url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("chat.update", v)
	for _, m := range s.messages {
		if m.Channel == v.Get("channel") && m.TS == v.Get("ts") {
			m.Text, m.Blocks = v.Get("text"), json.RawMessage(v.Get("blocks"))
			m.Updates++
			reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text})
			return
		}
	}
	reply(w, map[string]any{"ok": false, "error": "message_not_found"})
}

func (s *Server) postEphemeral(w http.ResponseWriter, v url.Values) {
	s.mu.Lock()
	s.record("chat.postEphemeral", v)
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: v.Get("channel"), User: v.Get("user"), Text: v.Get("text")})
	s.mu.Unlock()
	reply(w, map[string]any{"ok": true, "message_ts": fmt.Sprintf("%d.000000", time.Now().Unix())})
}

func (s *Server) openView(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TriggerID string          `json:"trigger_id"`
		View      json.RawMessage `json:"view"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TriggerID == "" {
		reply(w, map[string]any{"ok": false, "error": "invalid_trigger_id"})
		return
	}
	s.mu.Lock()
	s.views = append(s.views, req.View)
	s.mu.Unlock()
	reply(w, map[string]any{"ok": true, "view": map[string]any{"id": fmt.Sprintf("V%d", len(s.views))}})
}

func (s *Server) groupMembers(w http.ResponseWriter, v url.Values) {
	s.mu.Lock()
	users, ok := s.groups[v.Get("usergroup")]
	s.mu.Unlock()
	if !ok {
		reply(w, map[string]any{"ok": false, "error": "no_such_subteam"})
		return
	}
	reply(w, map[string]any{"ok": true, "users": users})
}
