// Package dashboard serves /dashboard, the DPO's view: requests by due date with their
// timelines and actions, breaches with a live countdown per clock, the charts a DPO reports
// upward, and the activity stream (the audit trail) with its chain's verification state. Staff
// log in with their API token, exchanged for a signed session cookie; roles decide what is
// shown and which actions appear, by the same x-lethe-roles the API enforces. Pages are
// server-rendered forms that work without JavaScript; only the countdown uses a script.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/web"
)

// Options configure the dashboard.
type Options struct {
	// Requests is the request service; its Cfg supplies tenants and their tokens. Required.
	Requests *requests.Service
	// Breaches is the breach service; without it the breaches pages say so.
	Breaches *breaches.Service
	// SigningKey keys the session cookie and the CSRF tokens. Required.
	SigningKey []byte
	// Secure marks cookies Secure; set it whenever the public URL is https.
	Secure bool
	// Base is the path the pages live under; default "/dashboard".
	Base string
	// MaxFormBytes caps a form's body (default config.DefaultLimits().MaxFormBytes).
	MaxFormBytes int64
	Log          *slog.Logger
	Now          func() time.Time
}

type handler struct {
	svc      *requests.Service
	breaches *breaches.Service
	cfg      *config.Config
	tokens   config.TokenTable
	roles    map[string][]string
	keys     keys
	csrf     web.CSRF
	secure   bool
	base     string
	maxForm  int64
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	chains   chainCache
}

// Mount serves the dashboard on mux under opt.Base.
func Mount(mux *http.ServeMux, opt Options) error {
	h, err := New(opt)
	if err != nil {
		return err
	}
	base := opt.Base
	if base == "" {
		base = "/dashboard"
	}
	mux.Handle(base, h)
	mux.Handle(base+"/", h)
	return nil
}

// New builds the dashboard's handler. Routes (relative to the base):
//
//	GET  ""                          the deadline list when logged in, else the login form
//	POST /login, /logout             exchange a token for a session cookie; end it
//	GET  /requests                   requests by due date: filters, paging
//	GET  /requests/{id}              timeline, connector results, blocks, actions
//	POST /requests/{id}/{action}     approve, deny, extend, retry, cancel
//	GET  /breaches, /breaches/{id}   the register; clocks with a live countdown
//	GET  /charts                     received and completed per week, on-time, median days
//	GET  /activity, /activity.csv    the audit trail, filtered; as CSV (streamed)
//	POST /activity/verify            verify the audit chain now
func New(opt Options) (http.Handler, error) {
	if opt.Requests == nil {
		return nil, errors.New("dashboard: Options.Requests is required")
	}
	if len(opt.SigningKey) == 0 {
		return nil, errors.New("dashboard: Options.SigningKey is required")
	}
	roles, err := api.OperationRoles(context.Background())
	if err != nil {
		return nil, err
	}
	h := &handler{
		svc: opt.Requests, breaches: opt.Breaches, cfg: &opt.Requests.Cfg, tokens: opt.Requests.Cfg.TokenTable(),
		roles: roles, keys: deriveKeys(opt.SigningKey), secure: opt.Secure, base: opt.Base,
		maxForm: opt.MaxFormBytes, log: opt.Log, now: opt.Now, mux: http.NewServeMux(),
	}
	if h.base == "" {
		h.base = "/dashboard"
	}
	if h.maxForm <= 0 {
		h.maxForm = config.DefaultLimits().MaxFormBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.csrf = web.CSRF{Key: h.keys.csrf, Scope: "dashboard", Path: h.base, Secure: h.secure}
	b := h.base
	h.mux.HandleFunc("GET "+b+"/{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, b, http.StatusSeeOther) })
	h.mux.HandleFunc("GET "+b, h.home)
	h.mux.HandleFunc("GET "+b+"/style.css", serveStatic("style.css", "text/css; charset=utf-8"))
	h.mux.HandleFunc("GET "+b+"/countdown.js", serveStatic("countdown.js", "text/javascript; charset=utf-8"))
	h.mux.HandleFunc("POST "+b+"/login", h.login)
	h.mux.HandleFunc("POST "+b+"/logout", h.logout)
	h.mux.HandleFunc("GET "+b+"/requests", h.staff("listRequests", h.requestList))
	h.mux.HandleFunc("GET "+b+"/requests/{id}", h.staff("getRequest", h.requestPage))
	h.mux.HandleFunc("POST "+b+"/requests/{id}/{action}", h.staff("getRequest", h.decide))
	h.mux.HandleFunc("GET "+b+"/breaches", h.staff("listBreaches", h.breachList))
	h.mux.HandleFunc("GET "+b+"/breaches/{id}", h.staff("getBreach", h.breachPage))
	h.mux.HandleFunc("GET "+b+"/charts", h.staff("listRequests", h.charts))
	h.mux.HandleFunc("GET "+b+"/activity", h.staff("listAudit", h.activity))
	h.mux.HandleFunc("GET "+b+"/activity.csv", h.staff("listAudit", h.activityCSV))
	h.mux.HandleFunc("POST "+b+"/activity/verify", h.staff("listAudit", h.verifyChain))
	h.mux.HandleFunc(b+"/", func(w http.ResponseWriter, r *http.Request) {
		h.problem(w, r, nil, http.StatusNotFound, "Page not found", "There is no such page.")
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.problem(w, r, nil, http.StatusForbidden, "Form expired", "The form came from another site or has expired. Go back, reload the page and try again.")
	}))
	// The breach page's countdown is the one script, served from here.
	return web.SecurityHeaders("'self'", h.limitForms(cop.Handler(h.mux))), nil
}

// can reports whether role may do the API operation op (its x-lethe-roles).
func (h *handler) can(role, op string) bool { return slices.Contains(h.roles[op], role) }

// staff admits a logged-in session whose role may do op, and checks the CSRF token of a form.
func (h *handler) staff(op string, next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.session(r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, h.base+"?next="+urlEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.problem(w, r, nil, http.StatusUnauthorized, "Logged out", "Your session has ended. Log in again.")
			return
		}
		if !h.can(s.Role, op) {
			h.problem(w, r, s, http.StatusForbidden, "Not for your role", "The "+s.Role+" role may not see this page.")
			return
		}
		if r.Method == http.MethodPost && !h.csrf.Check(r) {
			h.problem(w, r, s, http.StatusForbidden, "Form expired", "The form has expired. Go back, reload the page and try again.")
			return
		}
		next(w, r, s)
	}
}

// limitForms reads every posted form under the size cap.
func (h *handler) limitForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, h.maxForm)
			var tooBig *http.MaxBytesError
			if err := r.ParseForm(); errors.As(err, &tooBig) {
				h.problem(w, r, nil, http.StatusRequestEntityTooLarge, "Form too large", "The form is larger than Lethe accepts.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// keys are derived from the deployment's signing key, one per purpose, so nothing signed for
// MyAccount or an export link is ever accepted as a dashboard session.
type keys struct {
	csrf    []byte
	session []byte
}

func deriveKeys(signingKey []byte) keys {
	return keys{csrf: crypto.DeriveKey(signingKey, "lethe dashboard csrf v1"), session: crypto.DeriveKey(signingKey, "lethe dashboard session v1")}
}

// chainCache keeps each tenant's last audit chain verification, so a page view does not walk
// the whole chain each time.
type chainCache struct {
	mu     sync.Mutex
	states map[string]chainState
}

// chainState is the outcome of one verification.
type chainState struct {
	At       time.Time
	Events   int
	OK       bool
	Headline string
	Problem  string // the break found, or why it was not checked
}

func (c *chainCache) get(tenant string) (chainState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.states[tenant]
	return s, ok
}

func (c *chainCache) put(tenant string, s chainState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.states == nil {
		c.states = map[string]chainState{}
	}
	c.states[tenant] = s
}

func (h *handler) logFailure(r *http.Request, step string, err error) {
	h.log.ErrorContext(r.Context(), fmt.Sprintf("dashboard: %s failed", step), "error", err)
}
