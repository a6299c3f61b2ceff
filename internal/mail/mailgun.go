package mail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailgun/mailgun-go/v4"
)

// Sender delivers notices to data subjects.
//
// Send returns the provider's message ID, which delivery webhooks refer to. It does not retry:
// the caller (a Temporal activity) does, guided by IsPermanent and RetryAfter. Implementations
// are safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, n Notice) (messageID string, err error)
}

// Config is the mail section of Lethe's configuration (mail.* settings).
type Config struct {
	// Domain is the Mailgun sending domain, e.g. mg.example.com.
	Domain string
	// APIKey is a secret: from the environment or a file, never from the YAML file itself.
	APIKey string
	// Region is "us" or "eu"; it must match where the domain was created in Mailgun.
	Region string
	// APIBase overrides the region's API URL (it must end in /v3), e.g. for the mock server.
	APIBase string
	// From is the sender address; the tenant's name is used as its display name.
	From string
	// HTTPClient is used for API calls; nil means one with a 30 second timeout.
	HTTPClient *http.Client
}

// Validate checks the settings, naming the one to fix. It never repeats the API key.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Domain) == "" {
		errs = append(errs, errors.New("mail.domain is required"))
	} else if strings.ContainsAny(c.Domain, ":&'@(),!?#;%+=<>/ ") {
		errs = append(errs, errors.New("mail.domain must be a bare domain name such as mg.example.com"))
	}
	if strings.TrimSpace(c.APIKey) == "" {
		errs = append(errs, errors.New("mail.api_key is required (set it in the environment or a file)"))
	}
	if c.APIBase != "" {
		u, err := url.Parse(c.APIBase)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v3") {
			errs = append(errs, errors.New("mail.api_base must be an http(s) URL ending in /v3"))
		}
	} else if c.Region != "us" && c.Region != "eu" {
		errs = append(errs, errors.New(`mail.region must be "us" or "eu", matching the Mailgun domain's region`))
	}
	if c.APIBase != "" && c.Region != "" && c.Region != "us" && c.Region != "eu" {
		errs = append(errs, errors.New(`mail.region must be "us" or "eu"`))
	}
	if a, err := netmail.ParseAddress(c.From); err != nil || a.Address == "" {
		errs = append(errs, errors.New("mail.from must be an email address such as privacy@mg.example.com"))
	}
	return errors.Join(errs...)
}

// apiBase is the Mailgun API URL the config selects.
func (c Config) apiBase() string {
	switch {
	case c.APIBase != "":
		return strings.TrimRight(c.APIBase, "/")
	case c.Region == "eu":
		return mailgun.APIBaseEU
	default:
		return mailgun.APIBaseUS
	}
}

// Mailgun sends notices through the Mailgun API.
type Mailgun struct {
	mg   *mailgun.MailgunImpl
	from string // the bare address; the display name is the tenant's
}

var _ Sender = (*Mailgun)(nil)

// NewMailgun validates the config and returns a sender.
func NewMailgun(c Config) (*Mailgun, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	mg := mailgun.NewMailgun(strings.TrimSpace(c.Domain), strings.TrimSpace(c.APIKey))
	mg.SetAPIBase(c.apiBase())
	client := &http.Client{Timeout: 30 * time.Second}
	if c.HTTPClient != nil {
		cp := *c.HTTPClient
		client = &cp
	}
	next := client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	client.Transport = retryAfterTransport{next: next}
	mg.SetClient(client)
	from, _ := netmail.ParseAddress(c.From)
	return &Mailgun{mg: mg, from: from.Address}, nil
}

// APIBase is the Mailgun API URL this sender talks to.
func (m *Mailgun) APIBase() string { return m.mg.APIBase() }

// Send renders the notice and hands it to Mailgun. The message is tagged with its kind and, when
// Data has a RequestID, carries it as the user variable lethe-request-id, so delivery webhooks
// can be tied back to the request.
func (m *Mailgun) Send(ctx context.Context, n Notice) (string, error) {
	r, err := Render(n)
	if err != nil {
		return "", &PermanentError{Kind: n.Kind, Err: err}
	}
	to, err := netmail.ParseAddress(strings.TrimSpace(n.To))
	if err != nil {
		return "", &PermanentError{Kind: n.Kind, Err: errors.New("the recipient address is not valid")}
	}
	from := (&netmail.Address{Name: strings.TrimSpace(n.Tenant.Name), Address: m.from}).String()
	msg := mailgun.NewMessage(from, r.Subject, r.Text, to.Address)
	msg.SetHTML(r.HTML)
	if err := msg.AddTag(string(n.Kind)); err != nil {
		return "", &PermanentError{Kind: n.Kind, Err: fmt.Errorf("tagging message: %w", err)}
	}
	if id, _ := text("RequestID", n.Data["RequestID"]); id != "" {
		if err := msg.AddVariable(RequestIDVariable, id); err != nil {
			return "", &PermanentError{Kind: n.Kind, Err: fmt.Errorf("adding request id: %w", err)}
		}
	}
	if c := strings.TrimSpace(n.Tenant.ContactEmail); c != "" {
		msg.SetReplyTo(c) // replies reach the tenant, not the sending domain
	}

	hint := &retryHint{}
	_, id, err := m.mg.Send(context.WithValue(ctx, retryHintKey{}, hint), msg)
	if err != nil {
		return "", classify(ctx, n.Kind, err, hint.get())
	}
	// Mailgun answers "<id@domain>"; events and webhooks carry the ID without brackets.
	return strings.Trim(id, "<>"), nil
}

// RequestIDVariable is the Mailgun user variable that carries a notice's request ID.
const RequestIDVariable = "lethe-request-id"

// classify sorts a failed send into permanent and transient. The library's error text is not
// kept: Mailgun's response body may quote the recipient's address.
func classify(ctx context.Context, k Kind, err error, retryAfter time.Duration) error {
	var ure *mailgun.UnexpectedResponseError
	switch {
	case errors.As(err, &ure):
		s := ure.Actual
		if s == http.StatusTooManyRequests || s >= 500 {
			return &TransientError{Kind: k, Status: s, RetryAfter: retryAfter}
		}
		if s >= 400 {
			return &PermanentError{Kind: k, Status: s}
		}
		return &TransientError{Kind: k, Status: s}
	case errors.Is(err, mailgun.ErrInvalidMessage):
		return &PermanentError{Kind: k, Err: errors.New("mailgun considers the message invalid")}
	case ctx.Err() != nil:
		return &TransientError{Kind: k, Err: ctx.Err()}
	default:
		// Network errors: url.Error names the API URL (domain only), not the recipient.
		return &TransientError{Kind: k, Err: err}
	}
}

// The library's UnexpectedResponseError drops response headers, so Retry-After is read here,
// on the way back through the HTTP client, and handed to Send through the request context.
type retryHintKey struct{}

type retryHint struct {
	mu sync.Mutex
	d  time.Duration
}

func (h *retryHint) set(d time.Duration) { h.mu.Lock(); h.d = d; h.mu.Unlock() }
func (h *retryHint) get() time.Duration  { h.mu.Lock(); defer h.mu.Unlock(); return h.d }

type retryAfterTransport struct{ next http.RoundTripper }

func (t retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) {
		if h, ok := req.Context().Value(retryHintKey{}).(*retryHint); ok {
			h.set(parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
		}
	}
	return resp, err
}

// parseRetryAfter reads delay-seconds or an HTTP date; anything else is no hint.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
