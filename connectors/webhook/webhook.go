// Package webhook is the connector for systems Lethe does not know: each action (access, erase,
// rectify, restrict, block check, notify) is POSTed as a signed JSON task to the customer's
// endpoint, which answers at once or with 202 and later through a callback URL carrying a signed
// token. It also holds what Lethe's event subscriptions share with it: the signature
// (Sign, Verify) and the SSRF guard (Guard). See README.md.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/schemas"
)

// Name is the connector's registered type.
const Name = "webhook"

// MaxAnswer bounds an answer's body, an access answer's tables included.
const MaxAnswer = 32 << 20

func init() {
	connectors.MustRegister(connectors.Info{
		Name:         Name,
		Description:  "actions performed by an HTTP endpoint of yours, answering at once or by callback",
		Capabilities: Capabilities,
		Scoped:       true,
		NewConfig:    func() connectors.Config { return NewConfig() },
		New:          func(c connectors.Config) (connectors.Connector, error) { return New(c.(*Config)) },
	})
}

// Connector calls one endpoint.
type Connector struct {
	cfg    *Config
	secret []byte
	guard  Guard
	client *http.Client
	now    func() time.Time
}

var (
	_ connectors.Accessor     = (*Connector)(nil)
	_ connectors.Eraser       = (*Connector)(nil)
	_ connectors.Rectifier    = (*Connector)(nil)
	_ connectors.Restricter   = (*Connector)(nil)
	_ connectors.BlockChecker = (*Connector)(nil)
	_ connectors.Notifier     = (*Connector)(nil)
	_ connectors.Scoped       = (*Connector)(nil)
	_ connectors.Deferrer     = (*Connector)(nil)
)

// New builds the connector, reading the secret. It does not contact the endpoint: Check does.
func New(cfg *Config) (*Connector, error) {
	secret, err := connectors.ReadSecret("the webhook secret", cfg.SecretEnv, cfg.SecretFile)
	if err != nil {
		return nil, err
	}
	if len(secret) < 16 {
		return nil, errors.New("the webhook secret (secret_env or secret_file) must be at least 16 characters")
	}
	g := Guard{AllowPrivate: cfg.AllowPrivate}
	return &Connector{cfg: cfg, secret: []byte(secret), guard: g, client: g.Client(cfg.Timeout), now: time.Now}, nil
}

// Name implements connectors.Connector.
func (c *Connector) Name() string { return Name }

// Capabilities implements connectors.Scoped: what the endpoint serves.
func (c *Connector) Capabilities() []connectors.Capability { return c.cfg.Capabilities }

// Defers implements connectors.Deferrer: with a callback URL the endpoint may answer later.
func (c *Connector) Defers() bool { return c.cfg.CallbackURL != "" }

// Check refuses an endpoint URL that resolves to a non-public address (unless allowed).
func (c *Connector) Check(ctx context.Context) error {
	if err := c.guard.CheckURL(ctx, c.cfg.URL); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	return nil
}

// Close implements connectors.Connector.
func (c *Connector) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

// Access implements connectors.Accessor: the answer's tables are streamed to the sink.
func (c *Connector) Access(ctx context.Context, task connectors.Task, sink connectors.RecordSink) (connectors.AccessResult, error) {
	v, err := c.call(ctx, connectors.CapAccess, task, connectors.Sinks{Records: sink})
	if err != nil {
		return connectors.AccessResult{}, err
	}
	return v.(connectors.AccessResult), nil
}

// Erase implements connectors.Eraser.
func (c *Connector) Erase(ctx context.Context, task connectors.Task) (connectors.EraseResult, error) {
	v, err := c.call(ctx, connectors.CapErase, task, connectors.Sinks{})
	if err != nil {
		return connectors.EraseResult{}, err
	}
	return v.(connectors.EraseResult), nil
}

// Rectify implements connectors.Rectifier.
func (c *Connector) Rectify(ctx context.Context, task connectors.Task) (connectors.RectifyResult, error) {
	if _, err := connectors.Changes(task); err != nil {
		return connectors.RectifyResult{}, err
	}
	v, err := c.call(ctx, connectors.CapRectify, task, connectors.Sinks{})
	if err != nil {
		return connectors.RectifyResult{}, err
	}
	return v.(connectors.RectifyResult), nil
}

// Restrict implements connectors.Restricter.
func (c *Connector) Restrict(ctx context.Context, task connectors.Task) (connectors.RestrictResult, error) {
	v, err := c.call(ctx, connectors.CapRestrict, task, connectors.Sinks{})
	if err != nil {
		return connectors.RestrictResult{}, err
	}
	return v.(connectors.RestrictResult), nil
}

// BlockCheck implements connectors.BlockChecker.
func (c *Connector) BlockCheck(ctx context.Context, task connectors.Task) (connectors.BlockResult, error) {
	v, err := c.call(ctx, connectors.CapBlockCheck, task, connectors.Sinks{})
	if err != nil {
		return connectors.BlockResult{}, err
	}
	return v.(connectors.BlockResult), nil
}

// Notify implements connectors.Notifier.
func (c *Connector) Notify(ctx context.Context, task connectors.Task) (connectors.NotifyResult, error) {
	if _, err := connectors.MessageFromParams(task.Params); err != nil {
		return connectors.NotifyResult{}, err
	}
	v, err := c.call(ctx, connectors.CapNotify, task, connectors.Sinks{})
	if err != nil {
		return connectors.NotifyResult{}, err
	}
	return v.(connectors.NotifyResult), nil
}

// call POSTs the task and applies the answer.
func (c *Connector) call(ctx context.Context, action connectors.Capability, task connectors.Task, sinks connectors.Sinks) (any, error) {
	if task.Subject.IsZero() {
		return nil, connectors.Permanent(connectors.ErrNoSubject)
	}
	ans, err := c.post(ctx, action, task)
	if err != nil {
		return nil, err
	}
	return Apply(ctx, action, ans, sinks)
}

// post sends the task and returns the endpoint's answer, classifying every failure.
func (c *Connector) post(ctx context.Context, action connectors.Capability, task connectors.Task) (Answer, error) {
	msg := Task{Schema: TaskSchema, Version: schemas.Version, Action: action, IdempotencyKey: task.Key,
		RequestID: task.RequestID, TenantID: task.TenantID, Subject: task.Subject, Params: task.Params}
	if c.cfg.CallbackURL != "" {
		exp := c.now().Add(c.cfg.CallbackTTL).UTC().Truncate(time.Second)
		msg.Callback = &Callback{URL: c.cfg.CallbackURL + "?token=" + url.QueryEscape(CallbackToken(c.secret, c.cfg.CallbackURL, task.Key, exp)), ExpiresAt: exp}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return Answer{}, connectors.Permanent(fmt.Errorf("encoding the %s task: %w", action, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Answer{}, connectors.Permanent(fmt.Errorf("building the %s request: %w", action, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Lethe-Webhooks/1")
	req.Header.Set("Idempotency-Key", task.Key)
	req.Header.Set(SignatureHeader, Sign(c.secret, c.now(), body))
	res, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may carry a token
		}
		var refused *RefusedError
		if errors.As(err, &refused) {
			return Answer{}, connectors.Permanent(fmt.Errorf("%s on %s: %w", action, req.URL.Host, err))
		}
		return Answer{}, fmt.Errorf("%s on %s: %w", action, req.URL.Host, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, MaxAnswer+1))
	if err != nil {
		return Answer{}, fmt.Errorf("%s on %s: reading the answer: %w", action, req.URL.Host, err)
	}
	return c.classify(action, req.URL.Host, res, raw)
}

// classify turns the endpoint's response into an answer or an error: 200 and 201 answer,
// 202 defers to the callback, 408, 425, 429 and 5xx are retried (after Retry-After when given),
// any other status is permanent.
func (c *Connector) classify(action connectors.Capability, host string, res *http.Response, raw []byte) (Answer, error) {
	at := fmt.Sprintf("%s on %s", action, host)
	if len(raw) > MaxAnswer {
		return Answer{}, connectors.Permanent(fmt.Errorf("%s: the answer is larger than %d bytes", at, MaxAnswer))
	}
	switch s := res.StatusCode; {
	case s == http.StatusAccepted:
		if c.cfg.CallbackURL == "" {
			return Answer{}, connectors.Permanent(fmt.Errorf("%s: answered 202, but the instance has no callback_url to be answered on later", at))
		}
		return Answer{Status: StatusAccepted}, nil
	case s == http.StatusOK || s == http.StatusCreated:
		ans, err := ParseAnswer(raw)
		if err != nil {
			return Answer{}, connectors.Permanent(fmt.Errorf("%s: %w", at, err))
		}
		return ans, nil
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		err := fmt.Errorf("%s: answered %d", at, s)
		if secs, e := strconv.Atoi(res.Header.Get("Retry-After")); e == nil && secs >= 0 {
			return Answer{}, connectors.RetryAfter(err, time.Duration(secs)*time.Second)
		}
		return Answer{}, err
	case s == http.StatusRequestTimeout || s == http.StatusTooEarly || s >= 500:
		return Answer{}, fmt.Errorf("%s: answered %d", at, s)
	}
	err := fmt.Errorf("%s: answered %d", at, res.StatusCode)
	if ans, perr := ParseAnswer(raw); perr == nil && ans.Error != nil {
		err = fmt.Errorf("%s: answered %d: %s", at, res.StatusCode, clip(ans.Error.Message))
	}
	return Answer{}, connectors.Permanent(err)
}

// Apply turns an answer into the action's result, as the connector's call returns it: a
// success's result (an access's tables streamed to the sink), a failure's error, or, for an
// accepted task, a connectors.Deferred error. Lethe's callback endpoint applies a callback's
// answer with it, so an answer later gives the same result as an answer at once.
func Apply(ctx context.Context, action connectors.Capability, ans Answer, sinks connectors.Sinks) (any, error) {
	switch ans.Status {
	case StatusAccepted:
		return nil, connectors.Deferred(errors.New("the endpoint accepted the task and answers through its callback"))
	case StatusFailed:
		if len(ans.Blocks) > 0 {
			return nil, connectors.Blocked(ans.Blocks)
		}
		e := AnswerError{Message: "no reason given"}
		if ans.Error != nil {
			e = *ans.Error
		}
		err := fmt.Errorf("%s: the endpoint failed: %s", action, clip(e.Message))
		switch {
		case e.Permanent:
			return nil, connectors.Permanent(err)
		case e.RetryAfterSeconds > 0:
			return nil, connectors.RetryAfter(err, time.Duration(e.RetryAfterSeconds)*time.Second)
		}
		return nil, err
	}
	switch action {
	case connectors.CapAccess:
		return stream(ctx, ans.Tables, sinks.Records)
	case connectors.CapBlockCheck:
		return connectors.BlockResult{Blocks: append([]connectors.Block{}, ans.Blocks...)}, nil
	case connectors.CapErase:
		return decodeResult[connectors.EraseResult](action, ans)
	case connectors.CapRectify:
		return decodeResult[connectors.RectifyResult](action, ans)
	case connectors.CapRestrict:
		return decodeResult[connectors.RestrictResult](action, ans)
	case connectors.CapNotify:
		return decodeResult[connectors.NotifyResult](action, ans)
	}
	return nil, connectors.Permanent(fmt.Errorf("%s on connector %s: %w", action, Name, connectors.ErrUnsupported))
}

func decodeResult[R any](action connectors.Capability, ans Answer) (R, error) {
	var r R
	if len(ans.Result) == 0 {
		return r, connectors.Permanent(fmt.Errorf("%s: the endpoint's answer has no result", action))
	}
	if err := json.Unmarshal(ans.Result, &r); err != nil {
		return r, connectors.Permanent(fmt.Errorf("%s: decoding the endpoint's result: %w", action, err))
	}
	return r, nil
}

// stream writes an access answer's tables to the sink.
func stream(ctx context.Context, tables []Table, sink connectors.RecordSink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	if sink == nil {
		return res, connectors.Permanent(errors.New("access needs a record sink"))
	}
	for _, t := range tables {
		if err := sink.BeginTable(ctx, connectors.Table{Name: t.Name, Columns: t.Columns}); err != nil {
			return res, err
		}
		for i, row := range t.Rows {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if len(row) != len(t.Columns) {
				return res, connectors.Permanent(fmt.Errorf("access: table %s row %d has %d values for %d columns", t.Name, i, len(row), len(t.Columns)))
			}
			if err := sink.WriteRow(ctx, row); err != nil {
				return res, err
			}
			res.Rows++
		}
		if err := sink.EndTable(ctx); err != nil {
			return res, err
		}
		res.Tables++
	}
	return res, nil
}

// clip keeps an endpoint's message short in Lethe's records.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// VerifyCallback returns the task key the token of this instance's callback was issued for.
func (c *Connector) VerifyCallback(token string) (string, error) {
	return VerifyCallbackToken(c.secret, c.cfg.CallbackURL, token, c.now())
}
