package mailchimp

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
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
)

// client is a small typed client for exactly the Marketing API v3 endpoints the connector
// uses (see README "Decisions" for why not a library). Paths carry the subscriber hash, a
// pseudonym of the email address, so no error it returns names a path or a body's detail.
type client struct {
	http *http.Client
	base string // e.g. https://us6.api.mailchimp.com/3.0
	key  string
	// setting names where the key comes from, for the message of an auth failure.
	setting string
}

// member is a list member as the API returns it (the fields Lethe exports or acts on).
type member struct {
	ID                   string                `json:"id"`
	EmailAddress         string                `json:"email_address"`
	FullName             string                `json:"full_name"`
	Status               string                `json:"status"`
	EmailType            string                `json:"email_type"`
	MergeFields          map[string]any        `json:"merge_fields"`
	MarketingPermissions []marketingPermission `json:"marketing_permissions"`
	Language             string                `json:"language"`
	IPSignup             string                `json:"ip_signup"`
	TimestampSignup      string                `json:"timestamp_signup"`
	IPOpt                string                `json:"ip_opt"`
	TimestampOpt         string                `json:"timestamp_opt"`
	LastChanged          string                `json:"last_changed"`
	Source               string                `json:"source"`
	Tags                 []tag                 `json:"tags"`
}

type marketingPermission struct {
	ID      string `json:"marketing_permission_id"`
	Text    string `json:"text"`
	Enabled bool   `json:"enabled"`
}

type tag struct {
	Name      string `json:"name"`
	DateAdded string `json:"date_added,omitempty"`
	// Status is "active" or "inactive" when tags are set.
	Status string `json:"status,omitempty"`
}

type activity struct {
	Type          string `json:"activity_type"`
	CreatedAt     string `json:"created_at_timestamp"`
	CampaignID    string `json:"campaign_id"`
	CampaignTitle string `json:"campaign_title"`
}

// memberPatch is the body of PATCH /lists/{list_id}/members/{subscriber_hash}.
type memberPatch struct {
	EmailAddress string         `json:"email_address,omitempty"`
	Status       string         `json:"status,omitempty"`
	MergeFields  map[string]any `json:"merge_fields,omitempty"`
}

// pageSize is how many tags or activities one call asks for (the API's maximum is 1,000).
const pageSize = 1000

// apiError is a problem document (application/problem+json) the API answered with. Detail
// is not kept: it may quote the email address.
type apiError struct {
	Status int
	Title  string
}

func (e *apiError) Error() string { return fmt.Sprintf("mailchimp answered %d %s", e.Status, e.Title) }

// notFound reports whether err says the member (or list) is not there: 404, or the 400 a
// permanently deleted ("forgotten") address gets.
func notFound(err error) bool {
	var e *apiError
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || (e.Status == http.StatusBadRequest && e.Title == "Forgotten Email Not Subscribed"))
}

func (c *client) ping(ctx context.Context) error {
	return c.do(ctx, "checking the API key", http.MethodGet, "/ping", nil, nil, nil)
}

func (c *client) list(ctx context.Context, listID string) error {
	q := url.Values{"fields": {"id,name"}}
	return c.do(ctx, "reading audience "+listID, http.MethodGet, "/lists/"+url.PathEscape(listID), q, nil, nil)
}

func memberPath(listID, hash string) string {
	return "/lists/" + url.PathEscape(listID) + "/members/" + hash
}

func (c *client) member(ctx context.Context, listID, hash string) (member, error) {
	var m member
	err := c.do(ctx, "reading a member of audience "+listID, http.MethodGet, memberPath(listID, hash), nil, nil, &m)
	return m, err
}

func (c *client) updateMember(ctx context.Context, listID, hash string, p memberPatch) error {
	return c.do(ctx, "updating a member of audience "+listID, http.MethodPatch, memberPath(listID, hash), nil, p, nil)
}

func (c *client) archive(ctx context.Context, listID, hash string) error {
	return c.do(ctx, "archiving a member of audience "+listID, http.MethodDelete, memberPath(listID, hash), nil, nil, nil)
}

func (c *client) deletePermanent(ctx context.Context, listID, hash string) error {
	return c.do(ctx, "deleting a member of audience "+listID+" permanently", http.MethodPost, memberPath(listID, hash)+"/actions/delete-permanent", nil, nil, nil)
}

func (c *client) setTags(ctx context.Context, listID, hash string, tags []tag) error {
	return c.do(ctx, "tagging a member of audience "+listID, http.MethodPost, memberPath(listID, hash)+"/tags", nil, map[string]any{"tags": tags}, nil)
}

// tags and activities read one page from offset.
func (c *client) tags(ctx context.Context, listID, hash string, offset int) ([]tag, int, error) {
	var page struct {
		Tags  []tag `json:"tags"`
		Total int   `json:"total_items"`
	}
	err := c.do(ctx, "reading the tags of a member of audience "+listID, http.MethodGet, memberPath(listID, hash)+"/tags", pageQuery(offset), nil, &page)
	return page.Tags, page.Total, err
}

func (c *client) activities(ctx context.Context, listID, hash string, offset int) ([]activity, int, error) {
	var page struct {
		Activity []activity `json:"activity"`
		Total    int        `json:"total_items"`
	}
	err := c.do(ctx, "reading the activity of a member of audience "+listID, http.MethodGet, memberPath(listID, hash)+"/activity-feed", pageQuery(offset), nil, &page)
	return page.Activity, page.Total, err
}

func pageQuery(offset int) url.Values {
	return url.Values{"count": {strconv.Itoa(pageSize)}, "offset": {strconv.Itoa(offset)}}
}

// do makes one call and classifies its failure for the runner: 401 and 403 are permanent
// (naming the key's setting), other 4xx are permanent, 429 is retried after its Retry-After,
// 5xx and lost connections are retried.
func (c *client) do(ctx context.Context, doing, method, path string, q url.Values, body, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return connectors.Permanent(fmt.Errorf("%s: encoding the request: %w", doing, err))
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("%s: building the request: invalid base_url", doing))
	}
	req.SetBasicAuth("lethe", c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", doing, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the subscriber hash
		}
		return fmt.Errorf("%s: reaching mailchimp: %w", doing, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", doing, ctx.Err())
			}
			return fmt.Errorf("%s: reading the answer: %w", doing, err)
		}
		return nil
	}
	var problem struct {
		Title string `json:"title"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&problem)
	e := &apiError{Status: resp.StatusCode, Title: problem.Title}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return connectors.Permanent(fmt.Errorf("%s: mailchimp refused the API key from %s (check the key and its datacenter suffix): %w", doing, c.setting, e))
	case resp.StatusCode == http.StatusTooManyRequests:
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return connectors.RetryAfter(fmt.Errorf("%s: %w", doing, e), d)
		}
		return fmt.Errorf("%s: %w", doing, e)
	case resp.StatusCode/100 == 4:
		return connectors.Permanent(fmt.Errorf("%s: %w", doing, e))
	}
	return fmt.Errorf("%s: %w", doing, e)
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
