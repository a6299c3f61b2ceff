package dashboard

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/web"
)

//go:embed templates
var files embed.FS

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2 Jan 2006 15:04 UTC")
	},
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"label": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
}

var pages = func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "problem", "requests", "request", "breaches", "breach", "charts", "activity"} {
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(files, "templates/"+name+".html"))
	}
	return out
}()

func serveStatic(name, contentType string) http.HandlerFunc {
	b, err := files.ReadFile("templates/" + name)
	if err != nil {
		panic(err)
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(b)
	}
}

// view is what every page template gets.
type view struct {
	Title string
	Base  string
	CSRF  string
	// CSRFField names the form field that carries CSRF.
	CSRFField string
	Session   *session
	Nav       []navItem
	Error     string
	Notice    string
	Next      string

	Requests *requestsView
	Request  *requestView
	Breaches []breachRow
	Breach   *breachView
	Charts   *chartsView
	Activity *activityView
	Problem  string
}

type navItem struct {
	Label, Href string
	Current     bool
}

// view starts a page's view; the navigation shows the pages the session's role may open.
func (h *handler) view(w http.ResponseWriter, r *http.Request, s *session, title string) view {
	v := view{Title: title, Base: h.base, CSRF: h.csrf.Token(w, r), CSRFField: web.CSRFField, Session: s}
	if s == nil {
		return v
	}
	for _, n := range []struct{ label, path, op string }{
		{"Deadlines", "/requests", "listRequests"}, {"Breaches", "/breaches", "listBreaches"},
		{"Charts", "/charts", "listRequests"}, {"Activity", "/activity", "listAudit"},
	} {
		if h.can(s.Role, n.op) {
			v.Nav = append(v.Nav, navItem{Label: n.label, Href: h.base + n.path, Current: strings.HasPrefix(r.URL.Path, h.base+n.path)})
		}
	}
	return v
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.logFailure(r, "rendering "+name, err)
		http.Error(w, "Lethe failed to show this page.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *handler) problem(w http.ResponseWriter, r *http.Request, s *session, status int, title, msg string) {
	v := h.view(w, r, s, title)
	v.Problem = msg
	h.render(w, r, status, "problem", v)
}

// failed answers a service error: what the service says for errors written for the caller
// (they hold no personal data), a generic line for anything else, which is logged.
func (h *handler) failed(w http.ResponseWriter, r *http.Request, s *session, step string, err error) {
	switch {
	case errors.Is(err, requests.ErrNotFound), errors.Is(err, breaches.ErrNotFound):
		h.problem(w, r, s, http.StatusNotFound, "Not found", "There is no such request or breach in "+s.Tenant+".")
	case errors.Is(err, requests.ErrUnavailable):
		h.problem(w, r, s, http.StatusServiceUnavailable, "Unavailable", "A service Lethe depends on is unavailable; try again.")
	default:
		h.logFailure(r, step, err)
		h.problem(w, r, s, http.StatusInternalServerError, "Something went wrong", "Lethe failed to "+step+". The error is in Lethe's log.")
	}
}

// tenantZone is the zone the tenant's deadlines are counted in.
func (h *handler) tenantZone(tenant string) *time.Location {
	t, _ := h.cfg.Tenant(tenant)
	if l, err := time.LoadLocation(t.TimeZone); err == nil && t.TimeZone != "" {
		return l
	}
	return time.UTC
}

// today is the date in the tenant's zone, at midnight UTC (how due dates are kept).
func (h *handler) today(tenant string) time.Time {
	y, m, d := h.now().In(h.tenantZone(tenant)).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// option is one entry of a filter's select.
type option struct {
	Value, Label string
	Selected     bool
}

func options(selected string, values ...string) []option {
	out := make([]option, 0, len(values))
	for _, v := range values {
		out = append(out, option{Value: v, Label: strings.ReplaceAll(v, "_", " "), Selected: v == selected})
	}
	return out
}

// pageQuery is the current query with page set, for paging links.
func pageQuery(q url.Values, key, value string) string {
	c := url.Values{}
	for k, v := range q {
		c[k] = slices.Clone(v)
	}
	if value == "" {
		c.Del(key)
	} else {
		c.Set(key, value)
	}
	return c.Encode()
}

func atoiDefault(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return def
	}
	return n
}
