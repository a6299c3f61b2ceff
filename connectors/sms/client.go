package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
)

// Twilio's error codes the connector acts on (https://www.twilio.com/docs/api/errors).
const (
	codeAuthenticate  = 20003 // the Account SID or auth token is wrong
	codeInProgress    = 20009 // a message still queued or sending cannot be deleted yet
	codeNotFound      = 20404
	codeTooMany       = 20429
	codeUnsubscribed  = 21610 // the recipient replied STOP to this sender
	inProgressBackoff = time.Minute
)

// Message is one Message resource, the fields Lethe reads.
type Message struct {
	SID                 string `json:"sid"`
	AccountSID          string `json:"account_sid"`
	From                string `json:"from"`
	To                  string `json:"to"`
	Body                string `json:"body"`
	Status              string `json:"status"`
	Direction           string `json:"direction"`
	DateCreated         string `json:"date_created"`
	DateSent            string `json:"date_sent"`
	MessagingServiceSID string `json:"messaging_service_sid"`
}

// APIError is Twilio's JSON error body.
type APIError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// Error names the status and code only: Twilio's message text may quote a phone number.
func (e *APIError) Error() string {
	if e.MoreInfo == "" {
		return fmt.Sprintf("twilio answered %d (code %d)", e.Status, e.Code)
	}
	return fmt.Sprintf("twilio answered %d (code %d, see %s)", e.Status, e.Code, e.MoreInfo)
}

// client is a small typed client for exactly the Messages endpoints the connector uses:
// create, list (filtered by To and From, paged) and delete. Every call takes ctx and makes
// one attempt; the error says whether a retry can help.
type client struct {
	base, sid, token string
	tokenSetting     string // where the token came from, for the auth failure's message
	http             *http.Client
}

func (c *client) messagesURL() string {
	return c.base + "/2010-04-01/Accounts/" + url.PathEscape(c.sid) + "/Messages.json"
}

// create sends a text.
func (c *client) create(ctx context.Context, form url.Values) (Message, error) {
	var m Message
	err := c.do(ctx, http.MethodPost, c.messagesURL(), form, &m)
	return m, err
}

// page is one page of a message list.
type page struct {
	Messages    []Message `json:"messages"`
	NextPageURI string    `json:"next_page_uri"`
}

// list calls fn for every message matching the filter, a page at a time, following
// next_page_uri until the last page.
func (c *client) list(ctx context.Context, filter url.Values, pageSize int, fn func(Message) error) error {
	q := url.Values{}
	for k, v := range filter {
		q[k] = v
	}
	q.Set("PageSize", strconv.Itoa(pageSize))
	next := c.messagesURL() + "?" + q.Encode()
	for next != "" {
		var p page
		if err := c.do(ctx, http.MethodGet, next, nil, &p); err != nil {
			return err
		}
		for _, m := range p.Messages {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(m); err != nil {
				return err
			}
		}
		next = ""
		if p.NextPageURI != "" {
			next = c.base + p.NextPageURI
		}
	}
	return nil
}

// remove deletes one message; one already gone is not an error.
func (c *client) remove(ctx context.Context, sid string) error {
	u := c.base + "/2010-04-01/Accounts/" + url.PathEscape(c.sid) + "/Messages/" + url.PathEscape(sid) + ".json"
	err := c.do(ctx, http.MethodDelete, u, nil, nil)
	var api *APIError
	if errors.As(err, &api) && (api.Code == codeNotFound || api.Status == http.StatusNotFound) {
		return nil
	}
	return err
}

// do makes one request and classifies its failure: rate limits and server errors are
// retryable (after Retry-After when given), a message still in progress is retryable after a
// minute, everything else Twilio refuses is permanent.
func (c *client) do(ctx context.Context, method, u string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("building the twilio request: %w", err))
	}
	req.SetBasicAuth(c.sid, c.token)
	req.Header.Set("Accept", "application/json")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("calling twilio: %w", ctxErr)
		}
		// The url.Error names the URL, which holds the account SID only: no personal data.
		return fmt.Errorf("calling twilio: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		if out == nil || res.StatusCode == http.StatusNoContent {
			return nil
		}
		if err := json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(out); err != nil {
			return fmt.Errorf("reading twilio's answer: %w", err)
		}
		return nil
	}
	api := &APIError{Status: res.StatusCode}
	_ = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(api)
	api.Status = res.StatusCode
	return c.classify(api, res.Header.Get("Retry-After"))
}

func (c *client) classify(api *APIError, retryAfter string) error {
	wait, hasWait := parseRetryAfter(retryAfter)
	switch {
	case api.Status == http.StatusUnauthorized || api.Code == codeAuthenticate:
		return connectors.Permanent(fmt.Errorf("twilio refused the credentials (%d, code %d): check account_sid and the auth token in %s", api.Status, api.Code, c.tokenSetting))
	case api.Status == http.StatusTooManyRequests || api.Code == codeTooMany || api.Status >= 500:
		if hasWait {
			return connectors.RetryAfter(api, wait)
		}
		return api
	case api.Code == codeInProgress:
		return connectors.RetryAfter(api, inProgressBackoff)
	}
	return connectors.Permanent(api)
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}
