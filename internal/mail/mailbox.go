package mail

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Mailbox keeps what was sent, for the dev mailbox page of `lethe dev`: the whole flow can be
// clicked through with no mail account. It forwards every notice to the next sender (the
// Mailgun stand-in), one at a time. It holds personal data in memory, so only lethe dev uses it.
type Mailbox struct {
	next Sender
	max  int
	now  func() time.Time

	mu   sync.Mutex
	sent []Sent
}

// Sent is one message as the recipient would see it.
type Sent struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	To        string    `json:"to"`
	Kind      Kind      `json:"kind"`
	RequestID string    `json:"request_id,omitempty"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text"`
	HTML      string    `json:"-"`
}

// NewMailbox keeps the last max messages sent through next.
func NewMailbox(next Sender, max int) *Mailbox {
	return &Mailbox{next: next, max: max, now: time.Now}
}

// Send renders and forwards the notice, and keeps a copy.
func (m *Mailbox) Send(ctx context.Context, n Notice) (string, error) {
	r, err := Render(n)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id, err := m.next.Send(ctx, n)
	if err != nil {
		return "", err
	}
	reqID, _ := n.Data["RequestID"].(string)
	m.sent = append(m.sent, Sent{ID: id, At: m.now(), To: n.To, Kind: n.Kind, RequestID: reqID, Subject: r.Subject, Text: r.Text, HTML: r.HTML})
	if len(m.sent) > m.max {
		m.sent = m.sent[len(m.sent)-m.max:]
	}
	return id, nil
}

// Messages returns the kept messages, newest first, to one address (all when to is "").
func (m *Mailbox) Messages(to string) []Sent {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Sent
	for i := len(m.sent) - 1; i >= 0; i-- {
		if to == "" || strings.EqualFold(m.sent[i].To, to) {
			out = append(out, m.sent[i])
		}
	}
	return out
}

var mailboxPage = template.Must(template.New("mailbox").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lethe dev mailbox</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
article{border:1px solid #ddd;border-radius:.4rem;margin:1rem 0;padding:.5rem 1rem}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.5rem}.meta{color:#555;font-size:.9em}</style></head>
<body><h1>Dev mailbox</h1>
<p>What Lethe would have emailed, newest first. Only <code>lethe dev</code> has this page.</p>
<form method="get"><label>Recipient <input name="to" type="email" value="{{.To}}"></label> <button>Filter</button></form>
{{range .Messages}}<article><h2>{{.Subject}}</h2>
<p class="meta">To {{.To}} · {{.Kind}} · {{.At.Format "2006-01-02 15:04:05"}}</p>
<pre>{{.Text}}</pre></article>
{{else}}<p>No messages yet.</p>{{end}}
</body></html>`))

// MountMailbox serves the dev mailbox at /dev/mailbox on mux.
func MountMailbox(mux *http.ServeMux, m *Mailbox) { mux.Handle("GET /dev/mailbox", m.Handler()) }

// Handler serves the mailbox page, and JSON with ?format=json (what `lethe demo` reads).
func (m *Mailbox) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		msgs := m.Messages(to)
		if msgs == nil {
			msgs = []Sent{}
		}
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			_ = jsonEncode(w, msgs)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = mailboxPage.Execute(w, struct {
			To       string
			Messages []Sent
		}{to, msgs})
	})
}

func jsonEncode(w http.ResponseWriter, v any) error {
	return json.NewEncoder(w).Encode(v)
}
