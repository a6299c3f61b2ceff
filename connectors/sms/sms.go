// Package sms is the connector for text messages sent and received through Twilio's
// Programmable Messaging: it sends a tenant's texts (notify), exports the message records to
// and from a subject's number (access), and deletes them (erase). See README.md.
package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"unicode/utf8"

	"github.com/lethe-privacy/lethe/connectors"
)

// Name is the registered connector name.
const Name = "sms"

// Capabilities of the SMS connector.
var Capabilities = []connectors.Capability{connectors.CapAccess, connectors.CapErase, connectors.CapNotify}

// Table is the name of the exported table of message records.
const Table = "sms_messages"

// maxBody is Twilio's limit on a message body, in characters.
const maxBody = 1600

func init() {
	connectors.MustRegister(connectors.Info{
		Name:         Name,
		Description:  "Text messages through Twilio: send, export and delete the message records of a subject's number",
		Capabilities: Capabilities,
		NewConfig:    func() connectors.Config { return NewConfig() },
		New:          func(c connectors.Config) (connectors.Connector, error) { return New(c.(*Config)) },
	})
}

// Connector is the SMS connector. It is safe for concurrent use.
type Connector struct {
	cfg    *Config
	api    *client
	memory memo
}

var (
	_ connectors.Accessor = (*Connector)(nil)
	_ connectors.Eraser   = (*Connector)(nil)
	_ connectors.Notifier = (*Connector)(nil)
)

// New builds the connector from a validated config; it reads the auth token and does not
// contact Twilio.
func New(cfg *Config) (*Connector, error) {
	token, err := cfg.AuthToken()
	if err != nil {
		return nil, err
	}
	return &Connector{cfg: cfg, memory: memo{max: 4096}, api: &client{
		base: cfg.BaseURL, sid: cfg.AccountSID, token: token, tokenSetting: cfg.tokenSetting(),
		http: &http.Client{Timeout: cfg.Timeout},
	}}, nil
}

// Name is the registered connector name.
func (c *Connector) Name() string { return Name }

// Check lists one message, which proves the address and the credentials.
func (c *Connector) Check(ctx context.Context) error {
	errStop := errors.New("stop")
	err := c.api.list(ctx, url.Values{}, 1, func(Message) error { return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("checking the twilio account: %w", err)
	}
	return nil
}

// Close releases idle connections.
func (c *Connector) Close() error {
	c.api.http.CloseIdleConnections()
	return nil
}

// sender returns the task's tenant's sender.
func (c *Connector) sender(task connectors.Task) (Sender, error) {
	s, ok := c.cfg.Senders[task.TenantID]
	if !ok {
		return s, connectors.Permanent(fmt.Errorf("tenant %q has no sender: set senders.%s in the sms connector's configuration", task.TenantID, task.TenantID))
	}
	return s, nil
}

// subjectPhone checks the task's subject. A subject with no phone number has nothing here.
func subjectPhone(task connectors.Task) (string, error) {
	if task.Subject.IsZero() {
		return "", connectors.Permanent(connectors.ErrNoSubject)
	}
	if len(task.Params) > 0 {
		for k := range task.Params {
			return "", connectors.Permanent(fmt.Errorf("param %q is not an option of the sms connector", k))
		}
	}
	return task.Subject.Phone, nil
}

// messages calls fn for every message between the subject's number and the tenant's sender,
// both directions: a tenant sharing the account with others never reaches their texts.
func (c *Connector) messages(ctx context.Context, s Sender, phone string, fn func(Message) error) error {
	mine := func(m Message, other string) bool {
		return (s.From != "" && other == s.From) || (s.MessagingServiceSID != "" && m.MessagingServiceSID == s.MessagingServiceSID)
	}
	to, from := url.Values{"To": {phone}}, url.Values{"From": {phone}}
	if s.From != "" {
		to.Set("From", s.From)
		from.Set("To", s.From)
	}
	for _, q := range []struct {
		filter url.Values
		sent   bool // to the subject, else from them
	}{{to, true}, {from, false}} {
		err := c.api.list(ctx, q.filter, c.cfg.PageSize, func(m Message) error {
			theirs, other := m.To, m.From
			if !q.sent {
				theirs, other = m.From, m.To
			}
			if theirs != phone || !mine(m, other) {
				return nil
			}
			return fn(m)
		})
		if err != nil {
			return fmt.Errorf("listing the subject's texts: %w", err)
		}
	}
	return nil
}

// Texted returns the SID of a text with exactly body sent from tenant's sender to phone, if
// Twilio has one: Twilio takes no idempotency key, so a sender that lost Twilio's answer asks
// this before sending again.
func (c *Connector) Texted(ctx context.Context, tenant, phone, body string) (string, bool, error) {
	s, err := c.sender(connectors.Task{TenantID: tenant})
	if err != nil {
		return "", false, err
	}
	errFound := errors.New("found")
	var sid string
	err = c.messages(ctx, s, phone, func(m Message) error {
		if m.To == phone && m.Body == body {
			sid = m.SID
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return sid, true, nil
	}
	return "", false, err
}

var columns = []connectors.Column{
	{Name: "sid"}, {Name: "direction"}, {Name: "from", Category: connectors.CategoryContact},
	{Name: "to", Category: connectors.CategoryContact}, {Name: "body", Category: connectors.CategoryContact},
	{Name: "status"}, {Name: "date_created"}, {Name: "date_sent"},
}

// Access streams the message records to and from the subject's number as table
// sms_messages, a page at a time.
func (c *Connector) Access(ctx context.Context, task connectors.Task, sink connectors.RecordSink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	phone, err := subjectPhone(task)
	if err != nil || phone == "" {
		return res, err
	}
	s, err := c.sender(task)
	if err != nil {
		return res, err
	}
	if err := sink.BeginTable(ctx, connectors.Table{Name: Table, Columns: columns}); err != nil {
		return res, err
	}
	res.Tables = 1
	row := make([]any, len(columns))
	err = c.messages(ctx, s, phone, func(m Message) error {
		row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] = m.SID, m.Direction, m.From, m.To, m.Body, m.Status, m.DateCreated, m.DateSent
		res.Rows++
		return sink.WriteRow(ctx, row)
	})
	if err != nil {
		return res, err
	}
	return res, sink.EndTable(ctx)
}

// Erase deletes every message record between the subject's number and the tenant's sender.
// A message Twilio still has in progress cannot be deleted yet: the erase is retried.
func (c *Connector) Erase(ctx context.Context, task connectors.Task) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	if done, ok := c.memory.get(task.Key); ok {
		r := done.(connectors.EraseResult)
		r.AlreadyApplied = true
		return r, nil
	}
	phone, err := subjectPhone(task)
	if err != nil {
		return res, err
	}
	if phone != "" {
		s, err := c.sender(task)
		if err != nil {
			return res, err
		}
		// Collected first: deleting while paging would shift the pages under the cursor.
		var sids []string
		if err := c.messages(ctx, s, phone, func(m Message) error { sids = append(sids, m.SID); return nil }); err != nil {
			return res, err
		}
		for _, sid := range sids {
			if err := c.api.remove(ctx, sid); err != nil {
				return res, fmt.Errorf("deleting a text of the subject: %w", err)
			}
		}
		if len(sids) > 0 {
			res.Subjects = 1
			res.Deleted = map[string]int64{Table: int64(len(sids))}
		}
	}
	c.memory.put(task.Key, res)
	return res, nil
}

// Notify sends Params["body"] as a text from the tenant's sender to the subject's number;
// Params["status_callback"], if given, is the URL Twilio posts the text's status changes to.
func (c *Connector) Notify(ctx context.Context, task connectors.Task) (connectors.NotifyResult, error) {
	res := connectors.NotifyResult{Channel: connectors.ChannelSMS}
	if done, ok := c.memory.get(task.Key); ok {
		r := done.(connectors.NotifyResult)
		r.AlreadyApplied = true
		return r, nil
	}
	msg, err := connectors.MessageFromParams(task.Params)
	if err != nil {
		return res, err
	}
	callback, _ := task.Params["status_callback"].(string)
	if u, err := url.Parse(callback); callback != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return res, connectors.Permanent(errors.New("param \"status_callback\" must be an http(s) URL"))
	}
	switch {
	case msg.Channel != connectors.ChannelSMS:
		return res, connectors.Permanent(fmt.Errorf("the sms connector sends channel %q only, not %q", connectors.ChannelSMS, msg.Channel))
	case msg.Body == "":
		return res, connectors.Permanent(errors.New("a text needs a body: the sms connector renders no templates"))
	case utf8.RuneCountInString(msg.Body) > maxBody:
		return res, connectors.Permanent(fmt.Errorf("the body is longer than Twilio's %d characters", maxBody))
	case task.Subject.Phone == "":
		return res, connectors.Permanent(errors.New("the subject has no phone number to text"))
	}
	s, err := c.sender(task)
	if err != nil {
		return res, err
	}
	form := url.Values{"To": {task.Subject.Phone}, "Body": {msg.Body}}
	if callback != "" {
		form.Set("StatusCallback", callback) // Twilio posts the text's status changes there
	}
	if s.From != "" {
		form.Set("From", s.From)
	} else {
		form.Set("MessagingServiceSid", s.MessagingServiceSID)
	}
	m, err := c.api.create(ctx, form)
	if err != nil {
		return res, fmt.Errorf("sending a text: %w", err)
	}
	res.MessageID = m.SID
	c.memory.put(task.Key, res)
	return res, nil
}

// memo keeps the results of recent task keys, so a repeated call in this process answers
// from it. Across restarts the runner's task store answers a redelivered command first.
type memo struct {
	max   int
	mu    sync.Mutex
	keys  []string
	items map[string]any
}

func (m *memo) get(key string) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.items[key]
	return v, ok
}

func (m *memo) put(key string, v any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items == nil {
		m.items = map[string]any{}
	}
	if _, ok := m.items[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.items[key] = v
	for len(m.keys) > m.max {
		delete(m.items, m.keys[0])
		m.keys = m.keys[1:]
	}
}
