package web

import (
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strings"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/exports"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/requests"
)

func (h *handler) start(w http.ResponseWriter, r *http.Request) {
	h.renderStart(w, r, http.StatusOK, form{}, nil)
}

func (h *handler) renderStart(w http.ResponseWriter, r *http.Request, code int, f form, errs []fieldError) {
	v := h.view(w, r, "Ask about your personal data")
	v.Types, v.ChangeFields, v.Form, v.Errors = typeChoices, changeFields, f, errs
	h.render(w, r, code, "start", v)
}

var phoneChars = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", ".", "", "\u00a0", "")

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// readForm checks the start form and says what to fix, in the subject's words.
func readForm(r *http.Request) (form, []fieldError) {
	f := form{
		Type:       r.PostFormValue("type"),
		Email:      strings.TrimSpace(r.PostFormValue("email")),
		Phone:      strings.TrimSpace(r.PostFormValue("phone")),
		CustomerID: strings.TrimSpace(r.PostFormValue("customer_id")),
		Changes:    map[string]string{},
	}
	for _, c := range changeFields {
		if v := strings.TrimSpace(r.PostFormValue("change-" + c.Name)); v != "" {
			f.Changes[c.Name] = v
		}
	}
	var errs []fieldError
	known := false
	for _, t := range typeChoices {
		known = known || t.Value == f.Type
	}
	if !known {
		f.Type = ""
		errs = append(errs, fieldError{"type", "type-" + typeChoices[0].Value, "Choose what you would like us to do"})
	}
	switch a, err := mail.ParseAddress(f.Email); {
	case f.Email == "":
		errs = append(errs, fieldError{"email", "email", "Enter your email address"})
	case err != nil || a.Address != f.Email:
		errs = append(errs, fieldError{"email", "email", "Enter an email address in the correct format, like name@example.com"})
	}
	if f.Phone != "" && !e164.MatchString(phoneChars.Replace(f.Phone)) {
		errs = append(errs, fieldError{"phone", "phone", "Enter your phone number with its country code, like +44 7700 900123, or leave it empty"})
	}
	if len(f.CustomerID) > 64 {
		errs = append(errs, fieldError{"customer_id", "customer_id", "Customer number must be 64 characters or fewer"})
	}
	first := "change-" + changeFields[0].Name
	switch {
	case f.Type == domain.TypeRectification && len(f.Changes) == 0:
		errs = append(errs, fieldError{first, first, "Give at least one detail to correct, under “Correct details”"})
	case f.Type != domain.TypeRectification && f.Type != "" && len(f.Changes) > 0:
		errs = append(errs, fieldError{first, first, "You gave details to correct: choose “Correct your data”, or clear the corrections"})
	}
	return f, errs
}

// submission is the request a checked form asks for.
func (f form) submission(tenant string) requests.Submission {
	sub := requests.Submission{
		TenantID: tenant, Type: f.Type, Channel: "myaccount", Language: "en",
		Subject: connectors.Subject{Email: f.Email, Phone: phoneChars.Replace(f.Phone), CustomerID: f.CustomerID},
	}
	if len(f.Changes) > 0 {
		sub.Changes = f.Changes
	}
	return sub
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	if !h.checkCSRF(r) {
		h.problem(w, r, http.StatusForbidden, problemExpiredForm)
		return
	}
	f, errs := readForm(r)
	if len(errs) > 0 {
		h.renderStart(w, r, http.StatusUnprocessableEntity, f, errs)
		return
	}
	sub := f.submission(h.tenant)
	id, err := h.svc.Submit(r.Context(), sub)
	if h.refused(w, r, err) {
		return
	}
	if errors.Is(err, requests.ErrInvalid) {
		// readForm checks what Validate checks; this is a rule it does not know yet.
		h.logFailure(r, "submit (invalid)", err, f.Email, f.Phone, sub.Subject.Phone, f.CustomerID)
		h.renderStart(w, r, http.StatusUnprocessableEntity, f, []fieldError{{"email", "email", "We could not accept these details. Check them and try again"}})
		return
	}
	if err != nil {
		h.logFailure(r, "submit", err, f.Email, f.Phone, sub.Subject.Phone, f.CustomerID)
		h.problem(w, r, http.StatusServiceUnavailable, problemUnavailable)
		return
	}
	// The request's workflow emails the first code when it starts waiting for identity; a
	// second one here would replace it while it may already be on its way.
	http.Redirect(w, r, h.requestPath(id)+"/verify", http.StatusSeeOther)
}

// verifyPage says only that a code was sent and where: by email, or by text to a number shown
// by its last two digits. It shows nothing else of the request, so holding a request id
// reveals next to nothing.
func (h *handler) verifyPage(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	if id == "" {
		h.notFound(w, r)
		return
	}
	if h.boundTo(r, id) {
		http.Redirect(w, r, h.requestPath(id), http.StatusSeeOther)
		return
	}
	notice := ""
	if r.URL.Query().Get("sent") == "1" {
		notice = "We have sent you a new code. Codes sent before it no longer work."
	}
	h.renderVerify(w, r, http.StatusOK, id, notice, nil)
}

func (h *handler) renderVerify(w http.ResponseWriter, r *http.Request, code int, id, notice string, errs []fieldError) {
	d, err := h.svc.Delivery(r.Context(), h.tenant, id)
	if err != nil && !errors.Is(err, requests.ErrNotFound) {
		h.logFailure(r, "code delivery", err)
	}
	if err != nil {
		// An unknown id reads like any request: a code went by email.
		d = requests.CodeDelivery{Channel: identity.ChannelEmail}
	}
	title := "Check your email"
	if d.Channel == identity.ChannelSMS {
		title = "Check your phone"
	}
	v := h.view(w, r, title)
	v.ID, v.Notice, v.Errors, v.Delivery = id, notice, errs, d
	h.render(w, r, code, "verify", v)
}

func (h *handler) verify(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	if id == "" {
		h.notFound(w, r)
		return
	}
	if !h.checkCSRF(r) {
		h.problem(w, r, http.StatusForbidden, problemExpiredForm)
		return
	}
	code := strings.Join(strings.Fields(r.PostFormValue("code")), "")
	if code == "" {
		h.renderVerify(w, r, http.StatusUnprocessableEntity, id, "", []fieldError{{"code", "code", "Enter the code from the email"}})
		return
	}
	err := h.svc.VerifyCode(r.Context(), h.tenant, id, code)
	if h.refused(w, r, err) {
		return
	}
	if err != nil {
		msg, status, known := codeProblem(err)
		if !known {
			h.logFailure(r, "verify", err, code)
			h.problem(w, r, http.StatusServiceUnavailable, problemUnavailable)
			return
		}
		retryAfter(w, status, err)
		h.renderVerify(w, r, status, id, "", []fieldError{{"code", "code", msg}})
		return
	}
	h.bindRequest(w, id)
	http.Redirect(w, r, h.requestPath(id), http.StatusSeeOther)
}

func (h *handler) resend(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	if id == "" {
		h.notFound(w, r)
		return
	}
	if !h.checkCSRF(r) {
		h.problem(w, r, http.StatusForbidden, problemExpiredForm)
		return
	}
	if err := h.svc.ResendCode(r.Context(), h.tenant, id, r.PostFormValue("channel")); err != nil {
		if h.refused(w, r, err) {
			return
		}
		msg, status, sent, known := resendProblem(err)
		switch {
		case !known:
			h.logFailure(r, "resend", err)
			h.problem(w, r, http.StatusServiceUnavailable, problemUnavailable)
			return
		case !sent:
			retryAfter(w, status, err)
			h.renderVerify(w, r, status, id, "", []fieldError{{"code", "code", msg}})
			return
		}
	}
	http.Redirect(w, r, h.requestPath(id)+"/verify?sent=1", http.StatusSeeOther)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	if id == "" {
		h.notFound(w, r)
		return
	}
	if !h.boundTo(r, id) {
		h.problem(w, r, http.StatusForbidden, problemNotBound)
		return
	}
	st, err := h.svc.Get(r.Context(), h.tenant, id)
	if errors.Is(err, requests.ErrNotFound) {
		h.notFound(w, r)
		return
	}
	if err != nil {
		h.logFailure(r, "status", err)
		h.problem(w, r, http.StatusServiceUnavailable, problemUnavailable)
		return
	}
	sv := h.statusView(st, h.loc)
	if st.Export != nil && st.Status == domain.StatusCompleted {
		sv.Download = h.requestPath(id) + "/export"
		sv.Size, sv.Checksum = humanSize(st.Export.Bytes), st.Export.SHA256
	} else if st.Status == domain.StatusCompleted && (st.Type == domain.TypeAccess || st.Type == domain.TypePortability) {
		sv.ExportDeleted = true // expired (exports.expire_after_days) or forgotten by an erasure
	}
	v := h.view(w, r, sv.TypeLabel)
	v.Request = sv
	h.render(w, r, http.StatusOK, "status", v)
}

// export serves the package to the browser bound to the request, through the same signed,
// expiring link the API hands out, so every download is checked and audited in one place.
func (h *handler) export(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	if id == "" {
		h.notFound(w, r)
		return
	}
	if !h.boundTo(r, id) {
		h.problem(w, r, http.StatusForbidden, problemNotBound)
		return
	}
	link, _, err := h.svc.ExportLink(r.Context(), h.tenant, id)
	if err != nil {
		if noExport(err) {
			h.problem(w, r, http.StatusNotFound, problemNoExport)
			return
		}
		h.logFailure(r, "export link", err)
		h.problem(w, r, http.StatusServiceUnavailable, problemUnavailable)
		return
	}
	token, err := linkToken(link)
	if err != nil {
		h.logFailure(r, "export link", err)
		h.problem(w, r, http.StatusServiceUnavailable, problemUnavailable)
		return
	}
	body, name, sum, err := h.svc.OpenExport(r.Context(), token)
	if err != nil {
		h.logFailure(r, "opening export", err)
		h.problem(w, r, http.StatusServiceUnavailable, problemUnavailable)
		return
	}
	defer body.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/zip")
	hd.Set("Content-Disposition", `attachment; filename="`+safeFilename(name)+`"`)
	if sum != "" {
		hd.Set("X-Checksum-Sha256", sum)
	}
	if err := exports.Send(w, body, exports.DownloadStall); err != nil {
		h.logFailure(r, "sending export", err)
	}
}

// linkToken takes the token out of a signed export link: its token parameter, else its last
// path segment.
func linkToken(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", err
	}
	if t := u.Query().Get("token"); t != "" {
		return t, nil
	}
	if i := strings.LastIndex(u.Path, "/"); i >= 0 && i < len(u.Path)-1 {
		return u.Path[i+1:], nil
	}
	return "", errors.New("export link carries no token")
}

func safeFilename(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r == '/' || r > 0x7e {
			return '_'
		}
		return r
	}, name)
	if name == "" {
		return "export.zip"
	}
	return name
}
