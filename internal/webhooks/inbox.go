package webhooks

import (
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lethe-privacy/lethe/connectors/webhook"
	"github.com/lethe-privacy/lethe/internal/bus"
)

// Inbox is a local webhook receiver (lethe dev, the test stacks): it verifies each delivery's
// signature with the subscription's secret and keeps the latest. Its page shows only what an
// event references (type, IDs, status): events carry no personal data, and the page adds none.
type Inbox struct {
	secret []byte
	max    int

	mu  sync.Mutex
	got []Received
}

// Received is one delivery that reached the inbox.
type Received struct {
	At        time.Time `json:"received_at"`
	Delivery  string    `json:"delivery_id"`
	Event     string    `json:"event_type"`
	RequestID string    `json:"request_id,omitempty"`
	BreachID  string    `json:"breach_id,omitempty"`
	Status    string    `json:"status,omitempty"`
	Verified  bool      `json:"verified"`
	// Signature and Body are the delivery as sent, for tests to check independently.
	Signature string `json:"-"`
	Body      []byte `json:"-"`
}

// NewInbox keeps the last max deliveries signed with secret.
func NewInbox(secret []byte, max int) *Inbox { return &Inbox{secret: secret, max: max} }

// ServeHTTP receives a delivery: 204 when its signature verifies, 401 otherwise (kept either way).
func (in *Inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading the delivery", http.StatusBadRequest)
		return
	}
	rec := Received{At: time.Now().UTC(), Delivery: r.Header.Get(DeliveryHeader), Event: r.Header.Get(EventHeader),
		Signature: r.Header.Get(webhook.SignatureHeader), Body: body}
	rec.Verified = webhook.Verify(in.secret, rec.Signature, body, time.Now(), webhook.Tolerance) == nil
	var ev bus.Event
	if json.Unmarshal(body, &ev) == nil {
		rec.RequestID, rec.BreachID, rec.Status = ev.RequestID, ev.BreachID, ev.Status
	}
	in.mu.Lock()
	in.got = append(in.got, rec)
	if len(in.got) > in.max {
		in.got = in.got[len(in.got)-in.max:]
	}
	in.mu.Unlock()
	if !rec.Verified {
		http.Error(w, "the signature does not verify", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Received lists the deliveries kept, oldest first.
func (in *Inbox) Received() []Received {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.got)
}

var inboxPage = template.Must(template.New("inbox").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Webhook inbox</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.2rem .6rem;text-align:left}</style></head>
<body><h1>Webhook inbox</h1>
<p>Deliveries of the demo tenant's subscription, newest first; each signature checked with its secret. JSON: <a href="?format=json">?format=json</a></p>
<table><tr><th>received</th><th>event</th><th>request</th><th>breach</th><th>status</th><th>signature</th><th>delivery</th></tr>
{{range .}}<tr><td>{{.At.Format "15:04:05"}}</td><td>{{.Event}}</td><td>{{.RequestID}}</td><td>{{.BreachID}}</td><td>{{.Status}}</td><td>{{if .Verified}}verified{{else}}REFUSED{{end}}</td><td>{{.Delivery}}</td></tr>
{{else}}<tr><td colspan="7">nothing yet</td></tr>{{end}}</table></body></html>`))

// Page lists the deliveries, newest first, as HTML or (?format=json) JSON.
func (in *Inbox) Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := in.Received()
		slices.Reverse(got)
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(got)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = inboxPage.Execute(w, got)
	})
}
