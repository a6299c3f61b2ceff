package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// sessionCookie holds a signed session: tenant, role, the name staff gave, and its expiry.
// The token itself is never kept: the cookie proves it was presented.
const sessionCookie = "lethe_dashboard"

// sessionLifetime is one working day; after it staff log in again.
const sessionLifetime = 10 * time.Hour

// session is a logged-in member of staff.
type session struct {
	Tenant, Role, Name string
	Expires            time.Time
}

// Actor names who acted, for the audit trail and the workflow: the name given at login, and
// the tenant and role of the token, as the API names its callers.
func (s *session) Actor() string {
	actor := "dashboard:" + s.Tenant + "/" + s.Role
	if s.Name != "" {
		actor = s.Name + " (" + actor + ")"
	}
	return actor
}

func (h *handler) sign(payload string) string {
	m := hmac.New(sha256.New, h.keys.session)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *handler) setSession(w http.ResponseWriter, s session) {
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	fields := []string{s.Tenant, s.Role, url.QueryEscape(s.Name), strconv.FormatInt(s.Expires.Unix(), 10), base64.RawURLEncoding.EncodeToString(nonce)}
	payload := base64.RawURLEncoding.EncodeToString([]byte(strings.Join(fields, "|")))
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: payload + "." + h.sign(payload), Path: h.base,
		MaxAge: int(sessionLifetime / time.Second), HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	})
}

// session returns the browser's session when its cookie is genuine, unexpired, and its tenant
// and role still hold a token.
func (h *handler) session(r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(h.sign(payload))) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, false
	}
	f := strings.Split(string(raw), "|")
	if len(f) != 5 {
		return nil, false
	}
	exp, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil || h.now().Unix() >= exp {
		return nil, false
	}
	name, err := url.QueryUnescape(f[2])
	if err != nil {
		return nil, false
	}
	s := &session{Tenant: f[0], Role: f[1], Name: name, Expires: time.Unix(exp, 0)}
	if _, ok := h.cfg.Tenant(s.Tenant); !ok || !h.can(s.Role, "listRequests") {
		return nil, false
	}
	return s, true
}

// home is the deadline list for a session, else the login form.
func (h *handler) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.session(r); ok {
		http.Redirect(w, r, h.base+"/requests", http.StatusSeeOther)
		return
	}
	h.loginPage(w, r, http.StatusOK, "")
}

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request, status int, problem string) {
	v := h.view(w, r, nil, "Log in")
	v.Next = safeNext(h.base, r.FormValue("next"))
	v.Error = problem
	h.render(w, r, status, "login", v)
}

// login exchanges a support, dpo or admin token for a session.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.csrf.Check(r) {
		h.loginPage(w, r, http.StatusForbidden, "The form expired. Try again.")
		return
	}
	tenant, role, ok := h.tokens.Find(r.PostFormValue("token"))
	if !ok {
		h.loginPage(w, r, http.StatusUnauthorized, "That token is not one Lethe knows.")
		return
	}
	if !h.can(role, "listRequests") {
		h.loginPage(w, r, http.StatusForbidden, "The dashboard is for support, dpo and admin tokens; this one is "+role+".")
		return
	}
	h.setSession(w, session{Tenant: tenant, Role: role, Name: cleanName(r.PostFormValue("name")), Expires: h.now().Add(sessionLifetime)})
	h.log.InfoContext(r.Context(), "dashboard: logged in", "tenant", tenant, "role", role)
	http.Redirect(w, r, safeNext(h.base, r.PostFormValue("next")), http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.csrf.Check(r) {
		h.problem(w, r, nil, http.StatusForbidden, "Form expired", "The form has expired. Go back, reload the page and try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: h.base, MaxAge: -1, HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, h.base, http.StatusSeeOther)
}

// cleanName keeps the name staff gave printable and short: it goes into audit events.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) && r != '(' && r != ')' {
			return r
		}
		return -1
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60])
	}
	return s
}

// safeNext is where to go after logging in: a page of the dashboard, never another site.
func safeNext(base, next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.IsAbs() || u.Host != "" || !strings.HasPrefix(u.Path, base+"/") || strings.HasPrefix(next, "//") {
		return base + "/requests"
	}
	return u.RequestURI()
}

func urlEscape(s string) string { return url.QueryEscape(s) }
