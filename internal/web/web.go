// Package web serves Lethe's server-rendered pages. MyAccount is where a data subject asks
// for their rights, proves it is them with a code sent by email or text, follows the request and
// downloads their export. The pages are plain HTML forms (POST-redirect-GET) that work with
// JavaScript disabled, load no external assets, and are built for screen readers and phones.
package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/requests"
)

// Options configure MyAccount.
type Options struct {
	// SigningKey keys the CSRF tokens and the cookie binding a browser to a request. Required.
	SigningKey []byte
	// Secure marks cookies Secure; set it whenever the public URL is https.
	Secure bool
	// Base is the path the pages live under; default "/myaccount".
	Base string
	// TrustedProxies are the proxies whose X-Forwarded-For names the client (see
	// limits.ClientAddr); none means the connection's address.
	TrustedProxies []netip.Prefix
	// MaxFormBytes caps a form's body (default config.DefaultLimits().MaxFormBytes).
	MaxFormBytes int64
	Log          *slog.Logger
	Now          func() time.Time
}

// backend is what the pages need of the request service.
type backend interface {
	Submit(ctx context.Context, sub requests.Submission) (string, error)
	Get(ctx context.Context, tenant, id string) (domain.RequestState, error)
	VerifyCode(ctx context.Context, tenant, id, code string) error
	ResendCode(ctx context.Context, tenant, id, channel string) error
	Delivery(ctx context.Context, tenant, id string) (requests.CodeDelivery, error)
	ExportLink(ctx context.Context, tenant, id string) (string, time.Time, error)
	OpenExport(ctx context.Context, token string) (io.ReadCloser, string, string, error)
}

type handler struct {
	svc        backend
	tenant     string
	tenantName string
	contact    string
	keys       keys
	secure     bool
	base       string
	log        *slog.Logger
	now        func() time.Time
	loc        *time.Location
	mux        *http.ServeMux
	proxies    []netip.Prefix
	maxForm    int64
}

// MyAccount serves the MyAccount pages of one tenant under opt.Base (default /myaccount).
// Mount it for both the base path and the subtree, e.g.
//
//	srv.Handle("/myaccount", h)
//	srv.Handle("/myaccount/", h)
//
// Routes (relative to the base):
//
//	GET  ""                        choose a request type, give email, phone, customer number
//	POST /requests                 submit, then redirect to the verification step
//	GET  /requests/{id}/verify     enter the code sent by email or text
//	POST /requests/{id}/verify     check it; on success bind this browser to the request
//	POST /requests/{id}/resend     send a new code (channel=sms: by text instead)
//	GET  /requests/{id}            status, due date, timeline, export download when ready
//	GET  /requests/{id}/export     the export (ZIP), through a signed, expiring link
//	GET  /style.css                the only stylesheet
func MyAccount(svc *requests.Service, tenant string, opt Options) http.Handler {
	t, _ := svc.Cfg.Tenant(tenant)
	return newHandler(svc, tenant, t.Name, t.ContactEmail, t.TimeZone, opt)
}

// Mount serves every configured tenant's MyAccount pages on mux, each under its own path
// (config.MyAccountPath); opt.Base is set per tenant.
func Mount(mux *http.ServeMux, svc *requests.Service, opt Options) {
	for _, t := range svc.Cfg.Tenants {
		o := opt
		o.Base = svc.Cfg.MyAccountPath(t.ID)
		h := MyAccount(svc, t.ID, o)
		mux.Handle(o.Base, h)
		mux.Handle(o.Base+"/", h)
	}
}

func newHandler(svc backend, tenant, name, contact, timeZone string, opt Options) http.Handler {
	if len(opt.SigningKey) == 0 {
		panic("web: MyAccount needs a signing key")
	}
	h := &handler{
		svc: svc, tenant: tenant, tenantName: name, contact: contact,
		keys: deriveKeys(opt.SigningKey), secure: opt.Secure, base: opt.Base, log: opt.Log, now: opt.Now,
		mux: http.NewServeMux(), proxies: opt.TrustedProxies, maxForm: opt.MaxFormBytes,
	}
	if h.maxForm <= 0 {
		h.maxForm = config.DefaultLimits().MaxFormBytes
	}
	if h.base == "" {
		h.base = "/myaccount"
	}
	if h.tenantName == "" {
		h.tenantName = tenant
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	// Dates are shown in the tenant's zone, the one its deadlines are counted in.
	h.loc = time.UTC
	if l, err := time.LoadLocation(timeZone); err == nil && timeZone != "" {
		h.loc = l
	}
	if h.now == nil {
		h.now = time.Now
	}
	b := h.base
	h.mux.HandleFunc("GET "+b+"/{$}", h.redirectToBase)
	h.mux.HandleFunc("GET "+b, h.start)
	h.mux.HandleFunc("GET "+b+"/style.css", serveCSS)
	h.mux.HandleFunc("POST "+b+"/requests", h.submit)
	h.mux.HandleFunc("GET "+b+"/requests/{id}/verify", h.verifyPage)
	h.mux.HandleFunc("POST "+b+"/requests/{id}/verify", h.verify)
	h.mux.HandleFunc("POST "+b+"/requests/{id}/resend", h.resend)
	h.mux.HandleFunc("GET "+b+"/requests/{id}", h.status)
	h.mux.HandleFunc("GET "+b+"/requests/{id}/export", h.export)
	h.mux.HandleFunc(b+"/", h.notFound)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.problem(w, r, http.StatusForbidden, problemExpiredForm)
	}))
	return securityHeaders(h.limitForms(cop.Handler(h.mux)))
}

// limitForms records the client address for the rate limits and reads every posted form
// under the size cap, answering 413 with a page when it is larger.
func (h *handler) limitForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(limits.WithClient(r.Context(), limits.ClientAddr(r, h.proxies)))
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, h.maxForm)
			err := r.ParseForm()
			if err == nil && strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
				err = r.ParseMultipartForm(h.maxForm)
			}
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				h.problem(w, r, http.StatusRequestEntityTooLarge, problemTooLarge)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// retryAfter sets Retry-After on a 429 answer.
func retryAfter(w http.ResponseWriter, status int, err error) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(limits.Seconds(requests.RetryAfter(err))))
	}
}

// refused answers a call a rate limit refused, and reports whether it was one.
func (h *handler) refused(w http.ResponseWriter, r *http.Request, err error) bool {
	if !errors.Is(err, requests.ErrRateLimited) {
		return false
	}
	h.rateLimited(w, r, requests.RetryAfter(err))
	return true
}

// securityHeaders: no external assets or script, no framing, no referrer (request ids are in
// the URLs), and no caching of pages that show a request.
func securityHeaders(next http.Handler) http.Handler {
	return SecurityHeaders("", next)
}

// SecurityHeaders are the headers of Lethe's pages: nothing from other origins, no script but
// scriptSrc's (e.g. "'self'"; "" for none), no framing, no referrer, and no caching of
// anything but the stylesheets and scripts.
func SecurityHeaders(scriptSrc string, next http.Handler) http.Handler {
	csp := "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	if scriptSrc != "" {
		csp += "; script-src " + scriptSrc
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		if r.URL.Path != "" && !isStatic(r.URL.Path) {
			hd.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func isStatic(p string) bool { return strings.HasSuffix(p, ".css") || strings.HasSuffix(p, ".js") }

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// requestID is the {id} of the path, or "" when it cannot be a request id.
func requestID(r *http.Request) string {
	id := r.PathValue("id")
	if !requestIDPattern.MatchString(id) {
		return ""
	}
	return id
}

func (h *handler) requestPath(id string) string { return h.base + "/requests/" + id }

func (h *handler) redirectToBase(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, h.base, http.StatusSeeOther)
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.problem(w, r, http.StatusNotFound, problemNotFound)
}

// logFailure records that a step failed without any personal data: the error text has the
// values the subject typed replaced, and request ids are Lethe's own references.
func (h *handler) logFailure(r *http.Request, step string, err error, personal ...string) {
	h.log.ErrorContext(r.Context(), "myaccount: "+step+" failed", "error", redact(err, personal...))
}

func redact(err error, personal ...string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, p := range personal {
		if len(p) >= 3 {
			msg = replaceFold(msg, p, "[redacted]")
		}
	}
	return msg
}
