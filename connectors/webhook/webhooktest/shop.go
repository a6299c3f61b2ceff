// Package webhooktest is a reference endpoint of the webhook connector: an in-memory shop that
// verifies each task's signature and serves every action, at once or (Async) with 202 and a
// later POST of its answer to the task's callback URL. Lethe's tests run the connector against
// it, and integrators can read it as an example of the protocol.
package webhooktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/webhook"
	"github.com/lethe-privacy/lethe/schemas"
)

// Shop holds customers by email.
type Shop struct {
	Secret []byte
	// Async answers 202 and POSTs the answer to the callback URL (Deliver, or at once when
	// Hold is false).
	Async bool
	// Hold keeps async answers until Deliver is called, so a test decides when the callback comes.
	Hold bool

	mu        sync.Mutex
	customers map[string]*customer
	done      map[string]json.RawMessage // result by idempotency key
	tasks     []webhook.Task
	pending   []pending
}

type customer struct {
	Email, Phone, Name string
	Blocked            bool
	Restricted         bool
}

type pending struct {
	url    string
	answer webhook.Answer
}

// New is an empty shop whose tasks must be signed with secret.
func New(secret []byte) *Shop {
	return &Shop{Secret: secret, customers: map[string]*customer{}, done: map[string]json.RawMessage{}}
}

// Seed adds a customer; blocked ones cannot be erased.
func (s *Shop) Seed(email, phone, name string, blocked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers[strings.ToLower(email)] = &customer{Email: email, Phone: phone, Name: name, Blocked: blocked}
}

// Has reports whether the shop holds the customer.
func (s *Shop) Has(email string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.customers[strings.ToLower(email)] != nil
}

// Tasks are the tasks received, in order.
func (s *Shop) Tasks() []webhook.Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]webhook.Task(nil), s.tasks...)
}

// Pending is how many held answers wait for Deliver.
func (s *Shop) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Deliver POSTs every held answer to its callback URL and returns the statuses Lethe answered.
func (s *Shop) Deliver(ctx context.Context) ([]int, error) {
	s.mu.Lock()
	ps := s.pending
	s.pending = nil
	s.mu.Unlock()
	var out []int
	for _, p := range ps {
		st, err := Callback(ctx, p.url, p.answer)
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Callback POSTs an answer to a callback URL, as the endpoint does later.
func Callback(ctx context.Context, url string, a webhook.Answer) (int, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// ServeHTTP verifies the signature and performs the task.
func (s *Shop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading the body", http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(s.Secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), webhook.Tolerance); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if err := schemas.ValidateAs(schemas.WebhookTask, body); err != nil && !strings.Contains(err.Error(), "idempotency_key") {
		http.Error(w, err.Error(), http.StatusBadRequest) // connectortest's keys hold "/"
		return
	}
	var t webhook.Task
	if err := json.Unmarshal(body, &t); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.tasks = append(s.tasks, t)
	a := s.perform(t)
	if s.Async && t.Callback != nil {
		s.pending = append(s.pending, pending{t.Callback.URL, a})
		hold := s.Hold
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		if !hold {
			go func() { _, _ = s.Deliver(context.Background()) }()
		}
		return
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

func answer(status string) webhook.Answer {
	return webhook.Answer{Schema: schemas.WebhookAnswer, Version: schemas.Version, Status: status}
}

func succeeded(result any) webhook.Answer {
	a := answer(webhook.StatusSucceeded)
	a.Result, _ = json.Marshal(result)
	return a
}

// perform does the task under s.mu; a key done before answers as the first time, already applied.
func (s *Shop) perform(t webhook.Task) webhook.Answer {
	if raw, ok := s.done[t.IdempotencyKey]; ok {
		var r map[string]any
		_ = json.Unmarshal(raw, &r)
		r["already_applied"] = true
		return succeeded(r)
	}
	c := s.customers[strings.ToLower(t.Subject.Email)]
	a := s.act(t, c)
	if a.Status == webhook.StatusSucceeded && t.Action != connectors.CapAccess && t.Action != connectors.CapBlockCheck {
		s.done[t.IdempotencyKey] = a.Result
	}
	return a
}

func (s *Shop) act(t webhook.Task, c *customer) webhook.Answer {
	switch t.Action {
	case connectors.CapAccess:
		a := answer(webhook.StatusSucceeded)
		table := webhook.Table{Name: "customers", Columns: []connectors.Column{
			{Name: "email", Category: connectors.CategoryContact}, {Name: "phone", Category: connectors.CategoryContact},
			{Name: "name", Category: connectors.CategoryIdentity}}, Rows: [][]any{}}
		if c != nil {
			table.Rows = append(table.Rows, []any{c.Email, c.Phone, c.Name})
		}
		a.Tables = []webhook.Table{table}
		return a
	case connectors.CapBlockCheck:
		a := answer(webhook.StatusSucceeded)
		if c != nil && c.Blocked {
			a.Blocks = []connectors.Block{{Code: "open_order", Reason: "An order is still on its way to you."}}
		}
		return a
	case connectors.CapErase:
		if c == nil {
			return succeeded(connectors.EraseResult{})
		}
		if c.Blocked {
			a := answer(webhook.StatusFailed)
			a.Blocks = []connectors.Block{{Code: "open_order", Reason: "An order is still on its way to you."}}
			return a
		}
		delete(s.customers, strings.ToLower(c.Email))
		return succeeded(connectors.EraseResult{Subjects: 1, Deleted: map[string]int64{"customers": 1}})
	case connectors.CapRectify:
		changes, _ := t.Params["changes"].(map[string]any)
		if c != nil {
			if n, ok := changes["name"].(string); ok {
				c.Name = n
			}
			return succeeded(connectors.RectifyResult{Updated: map[string]int64{"customers": 1}})
		}
		return succeeded(connectors.RectifyResult{})
	case connectors.CapRestrict:
		lift, _ := t.Params["lift"].(bool)
		if c != nil {
			c.Restricted = !lift
		}
		return succeeded(connectors.RestrictResult{Restricted: !lift, Rows: map[bool]int64{true: 1}[c != nil]})
	case connectors.CapNotify:
		return succeeded(connectors.NotifyResult{Channel: connectors.ChannelEmail, MessageID: fmt.Sprintf("msg-%d", len(s.tasks))})
	}
	a := answer(webhook.StatusFailed)
	a.Error = &webhook.AnswerError{Message: "unsupported action " + string(t.Action), Permanent: true}
	return a
}
