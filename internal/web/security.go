package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/internal/crypto"
)

// Cookie names. The CSRF cookie is per browser; the request cookie is scoped by Path to one
// request's pages, so a browser holds one per request it verified and sends each only there.
const (
	csrfCookie    = "lethe_csrf"
	requestCookie = "lethe_request"
	csrfField     = "csrf_token"
)

// keys are derived from the deployment's signing key, one per purpose, so a value signed for
// one use (an export link, a CSRF token) is never accepted as another (a request session).
type keys struct {
	csrf    []byte
	session []byte
}

func deriveKeys(signingKey []byte) keys {
	return keys{csrf: crypto.DeriveKey(signingKey, "lethe myaccount csrf v1"), session: crypto.DeriveKey(signingKey, "lethe myaccount request session v1")}
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CSRF protection is a signed double-submit token: the browser holds a random value in an
// HttpOnly cookie, and every form carries HMAC(key, scope, value). Another site can make the
// browser send the cookie but can neither read it nor compute the token, and a cookie planted
// from a sibling domain does not help without the key. http.CrossOriginProtection (Sec-Fetch-Site
// and Origin) refuses cross-origin posts before the token is even checked.
type CSRF struct {
	Key    []byte // one purpose's key, derived from the signing key
	Scope  string // bound into the token: MyAccount's tenant, the dashboard
	Path   string // the cookie's path: the surface's base
	Secure bool
}

// CSRFField is the form field that carries the token.
const CSRFField = csrfField

// Token returns the token for this browser's forms, setting the cookie on first visit.
func (c CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	ck, err := r.Cookie(csrfCookie)
	value := ""
	if err == nil && validNonce(ck.Value) {
		value = ck.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		value = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{
			Name: csrfCookie, Value: value, Path: c.Path, HttpOnly: true,
			Secure: c.Secure, SameSite: http.SameSiteLaxMode,
		})
	}
	return mac(c.Key, c.Scope, value)
}

// Check reports whether the posted form carries this browser's token.
func (c CSRF) Check(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || !validNonce(ck.Value) {
		return false
	}
	want := mac(c.Key, c.Scope, ck.Value)
	return hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(want))
}

func (h *handler) csrf() CSRF {
	return CSRF{Key: h.keys.csrf, Scope: h.tenant, Path: h.base, Secure: h.secure}
}

func (h *handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	return h.csrf().Token(w, r)
}

func (h *handler) checkCSRF(r *http.Request) bool { return h.csrf().Check(r) }

func validNonce(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// sessionLifetime covers a request's whole life: one month, a two-month extension, and time
// to download the export afterwards.
const sessionLifetime = 120 * 24 * time.Hour

// bindRequest gives this browser access to one request's status and export: a cookie holding
// the expiry and HMAC(key, tenant, request id, expiry), sent only to that request's pages.
func (h *handler) bindRequest(w http.ResponseWriter, id string) {
	exp := h.now().Add(sessionLifetime).Unix()
	expS := strconv.FormatInt(exp, 10)
	http.SetCookie(w, &http.Cookie{
		Name: requestCookie, Value: expS + "." + mac(h.keys.session, h.tenant, id, expS),
		Path: h.requestPath(id), MaxAge: int(sessionLifetime / time.Second),
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	})
}

// boundTo reports whether the browser proved it verified request id. Every cookie of the name
// is tried: a browser may also hold one for a parent path.
func (h *handler) boundTo(r *http.Request, id string) bool {
	for _, c := range r.CookiesNamed(requestCookie) {
		expS, sig, ok := strings.Cut(c.Value, ".")
		if !ok {
			continue
		}
		exp, err := strconv.ParseInt(expS, 10, 64)
		if err != nil || h.now().Unix() > exp {
			continue
		}
		if hmac.Equal([]byte(sig), []byte(mac(h.keys.session, h.tenant, id, expS))) {
			return true
		}
	}
	return false
}
