package api

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/breachreport"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/exports"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// staffRoles may state when a request really arrived (post, phone).
var staffRoles = []string{"support", "dpo", "admin"}

// handlers maps each OpenAPI operationId to the code that serves it.
func (a *v1) handlers() map[string]func(http.ResponseWriter, *http.Request, *call) {
	hs := map[string]func(http.ResponseWriter, *http.Request, *call){
		"submitRequest":          a.submit,
		"listRequests":           a.list,
		"getRequest":             a.get,
		"verifyRequest":          a.verify,
		"resendVerificationCode": a.resend,
		"approveRequest":         a.decide(workflows.UpdateApprove),
		"denyRequest":            a.decide(workflows.UpdateDeny),
		"extendRequest":          a.decide(workflows.UpdateExtend),
		"cancelRequest":          a.decide(workflows.UpdateCancel),
		"retryRequest":           a.decide(workflows.UpdateRetry),
		"confirmIdentifiers":     a.confirm,
		"getExport":              a.export,
		"getBreachReport":        a.breachReport,
		"listAudit":              a.audit,
		"getConsent":             a.consent,
		"setSubjectExpiry":       a.setExpiry,
	}
	maps.Copy(hs, a.breachHandlers())
	return hs
}

type submission struct {
	Type              string             `json:"type"`
	Subject           connectors.Subject `json:"subject"`
	Changes           map[string]string  `json:"changes"`
	ReceivedAt        *time.Time         `json:"received_at"`
	Regime            string             `json:"regime"`
	Country           string             `json:"country"`
	Language          string             `json:"language"`
	RequestID         string             `json:"request_id"`
	IdentityAssertion string             `json:"identity_assertion"`
}

type submitted struct {
	RequestID        string `json:"request_id"`
	Status           string `json:"status"`
	IdentityVerified bool   `json:"identity_verified"`
}

func (a *v1) submit(w http.ResponseWriter, r *http.Request, c *call) {
	var in submission
	if err := decode(c.body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "the body does not match the submission schema")
		return
	}
	sub := requests.Submission{
		RequestID: in.RequestID, TenantID: c.tenant, Type: in.Type, Subject: in.Subject, Changes: in.Changes,
		Channel: "api", Language: in.Language, Regime: in.Regime, Country: in.Country,
	}
	if in.ReceivedAt != nil {
		if !isStaff(c.role) {
			writeError(w, http.StatusForbidden, "forbidden", "received_at may only be set by staff roles ("+strings.Join(staffRoles, ", ")+")")
			return
		}
		sub.ReceivedAt = *in.ReceivedAt
	}
	var id string
	var err error
	if in.IdentityAssertion != "" {
		id, err = a.svc.SubmitWithAssertion(r.Context(), sub, in.IdentityAssertion)
	} else {
		id, err = a.svc.Submit(r.Context(), sub)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/requests/"+id)
	writeJSON(w, http.StatusCreated, submitted{RequestID: id, Status: domain.StatusReceived, IdentityVerified: in.IdentityAssertion != ""})
}

func (a *v1) get(w http.ResponseWriter, r *http.Request, c *call) {
	st, err := a.svc.Get(r.Context(), c.tenant, c.params["id"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeRequest(w, r, c, st)
}

// writeRequest answers with the request; staff also see the subject's identifiers and which
// are proven, to confirm the others.
func (a *v1) writeRequest(w http.ResponseWriter, r *http.Request, c *call, st domain.RequestState) {
	v := viewOf(st)
	if isStaff(c.role) {
		ids, err := a.svc.ViewSubjectIdentifiers(r.Context(), c.tenant, st.RequestID, a.actor(c, ""))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		v.Identifiers = ids
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *v1) confirm(w http.ResponseWriter, r *http.Request, c *call) {
	var in struct {
		Identifiers []string `json:"identifiers"`
		Actor       string   `json:"actor"`
	}
	if err := decode(c.body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "the body must be {\"identifiers\": [\"customer_id\"], \"actor\": \"...\"}")
		return
	}
	st, err := a.svc.ConfirmIdentifiers(r.Context(), c.tenant, c.params["id"], a.actor(c, in.Actor), in.Identifiers)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeRequest(w, r, c, st)
}

// actor names who decided: the token's tenant and role, and who clicked when given.
func (a *v1) actor(c *call, clicked string) string {
	actor := "api:" + c.tenant + "/" + c.role
	if clicked = strings.TrimSpace(clicked); clicked != "" {
		actor = clicked + " (" + actor + ")"
	}
	return actor
}

func (a *v1) verify(w http.ResponseWriter, r *http.Request, c *call) {
	var in struct {
		Code string `json:"code"`
	}
	if err := decode(c.body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "the body must be {\"code\": \"...\"}")
		return
	}
	id := c.params["id"]
	if err := a.svc.VerifyCode(r.Context(), c.tenant, id, in.Code); err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.svc.Get(r.Context(), c.tenant, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(st))
}

func (a *v1) resend(w http.ResponseWriter, r *http.Request, c *call) {
	var in struct {
		Channel string `json:"channel"`
	}
	if len(c.body) > 0 {
		if err := decode(c.body, &in); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_json", "the body must be {\"channel\": \"email\" or \"sms\"} or empty")
			return
		}
	}
	id := c.params["id"]
	sent, err := a.svc.SendCode(r.Context(), c.tenant, id, in.Channel)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := map[string]any{"status": "sent", "expires_at": sent.ExpiresAt.UTC()}
	if sent.Channel != "" {
		body["channel"] = sent.Channel
	}
	writeJSON(w, http.StatusAccepted, body)
}

func (a *v1) decide(update string) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		var in struct {
			Reason string `json:"reason"`
			Actor  string `json:"actor"`
		}
		if err := decode(c.body, &in); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_json", "the body must be {\"reason\": \"...\", \"actor\": \"...\"}")
			return
		}
		st, err := a.svc.Decide(r.Context(), c.tenant, c.params["id"], update, workflows.Decision{Actor: a.actor(c, in.Actor), Reason: strings.TrimSpace(in.Reason)})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, viewOf(st))
	}
}

func (a *v1) list(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	f := requests.Filter{Status: q.Get("status"), DueBefore: q.Get("due_before")}
	if v := q.Get("limit"); v != "" {
		f.Limit, _ = strconv.Atoi(v) // validated against the document
	}
	out, err := a.svc.List(r.Context(), c.tenant, f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if out == nil {
		out = []requests.Summary{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
}

// export serves the package to a signed link, and hands token holders a fresh signed link,
// so every download goes through the link check and its audit event.
func (a *v1) export(w http.ResponseWriter, r *http.Request, c *call) {
	id := c.params["id"]
	if !c.link {
		link, expires, err := a.svc.ExportLink(r.Context(), c.tenant, id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		w.Header().Set("Location", link)
		writeJSON(w, http.StatusFound, map[string]any{"url": link, "expires_at": expires.UTC()})
		return
	}
	body, name, sum, err := a.svc.OpenRequestExport(r.Context(), id, r.URL.Query().Get("token"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+strings.Map(safeFileRune, name)+`"`)
	h.Set("X-Checksum-Sha256", sum)
	// The token is in the URL: keep it out of Referer headers.
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	if err := exports.Send(w, body, exports.DownloadStall); err != nil {
		a.log.Warn("sending an export was cut short", "request_id", id, "err", err)
	}
}

func safeFileRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
		return r
	}
	return '_'
}

// audit answers the tenant's audit trail, newest first, a page at a time: next_cursor, when
// present, fetches the older events.
func (a *v1) audit(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	f := store.AuditFilter{TenantID: c.tenant, Actor: q.Get("actor"), Action: q.Get("action"), RequestID: q.Get("request_id"), SubjectRef: q.Get("subject_ref"), Limit: 100}
	// The document validated the formats; what Go's parsers refuse besides is answered 400.
	if v := q.Get("limit"); v != "" {
		f.Limit, _ = strconv.Atoi(v)
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalid_time", t.name+" must be an RFC 3339 time such as 2026-03-01T09:00:00Z")
				return
			}
			*t.to = at
		}
	}
	if v := q.Get("cursor"); v != "" {
		before, err := strconv.ParseInt(v, 10, 64)
		if err != nil || before <= 0 {
			writeError(w, http.StatusBadRequest, "invalid_cursor", "cursor must be a next_cursor this endpoint returned")
			return
		}
		f.Before = before
	}
	events, err := a.svc.Store.Audit().List(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := map[string]any{"events": events}
	if len(events) == f.Limit {
		out["next_cursor"] = strconv.FormatInt(events[len(events)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// fail answers a service error with its status. Messages of the service's errors are written
// for the caller and hold no personal data; anything unexpected is logged and answered 500.
func (a *v1) fail(w http.ResponseWriter, r *http.Request, err error) {
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			msg := m.msg
			if msg == "" {
				msg = strings.TrimPrefix(err.Error(), m.err.Error()+": ")
			}
			if m.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", strconv.Itoa(limits.Seconds(requests.RetryAfter(err))))
			}
			writeError(w, m.status, m.code, msg)
			return
		}
	}
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) || errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("api dependency unavailable", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "a service Lethe depends on is unavailable; try again")
		return
	}
	a.log.Error("api request failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "Lethe failed to handle the request")
}

// errorMap is checked in order: the specific errors first, since each also matches a broad one.
var errorMap = []struct {
	err    error
	status int
	code   string
	msg    string // "" means the error's own message
}{
	{requests.ErrRateLimited, http.StatusTooManyRequests, "rate_limited", ""},
	{requests.ErrCodeUsed, http.StatusUnprocessableEntity, "code_used", ""},
	{requests.ErrCodeExpired, http.StatusUnprocessableEntity, "code_expired", ""},
	{requests.ErrNoCodeSent, http.StatusUnprocessableEntity, "no_code", ""},
	{requests.ErrCodeWrong, http.StatusUnprocessableEntity, "wrong_code", ""},
	{requests.ErrTooManyCodes, http.StatusTooManyRequests, "too_many_codes", ""},
	{requests.ErrTooManyAttempts, http.StatusTooManyRequests, "too_many_attempts", ""},
	{requests.ErrAlreadyVerified, http.StatusConflict, "already_verified", ""},
	{requests.ErrRequestClosed, http.StatusConflict, "conflict", ""},
	{requests.ErrNoEmail, http.StatusUnprocessableEntity, "no_email", ""},
	{requests.ErrNoPhone, http.StatusUnprocessableEntity, "channel_unavailable", ""},
	{requests.ErrNoTexts, http.StatusUnprocessableEntity, "channel_unavailable", ""},
	{requests.ErrTextRefused, http.StatusUnprocessableEntity, "text_refused", ""},
	{requests.ErrAssertionExpired, http.StatusUnprocessableEntity, "assertion_expired", ""},
	{requests.ErrAssertionReplayed, http.StatusUnprocessableEntity, "assertion_replayed", ""},
	{requests.ErrAssertionMismatch, http.StatusUnprocessableEntity, "assertion_mismatch", ""},
	{requests.ErrAssertionInvalid, http.StatusUnprocessableEntity, "assertion_invalid", ""},
	{requests.ErrLinkExpired, http.StatusForbidden, "link_expired", ""},
	{requests.ErrLinkInvalid, http.StatusForbidden, "link_invalid", ""},
	{requests.ErrNoExport, http.StatusConflict, "no_export", ""},
	{breachreport.ErrNotFound, http.StatusNotFound, "not_found", ""},
	{breachreport.ErrInvalid, http.StatusBadRequest, "invalid_request", ""},
	{breachreport.ErrLinkExpired, http.StatusForbidden, "link_expired", ""},
	{breachreport.ErrLinkInvalid, http.StatusForbidden, "link_invalid", ""},
	{requests.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "a service Lethe depends on is unavailable; try again"},
	{requests.ErrNotFound, http.StatusNotFound, "not_found", "no such request"},
	{requests.ErrDuplicate, http.StatusConflict, "duplicate", "a request with this request_id already exists"},
	{requests.ErrInvalid, http.StatusUnprocessableEntity, "invalid_request", ""},
	{requests.ErrRejected, http.StatusConflict, "conflict", ""},
	{breaches.ErrNotFound, http.StatusNotFound, "not_found", "no such breach"},
	{breaches.ErrInvalid, http.StatusUnprocessableEntity, "invalid_request", ""},
	{breaches.ErrRejected, http.StatusConflict, "conflict", ""},
}

func isStaff(role string) bool {
	for _, r := range staffRoles {
		if r == role {
			return true
		}
	}
	return false
}

// requestView is a request as the API shows it: no storage locations, no connector internals.
type requestView struct {
	RequestID          string             `json:"request_id"`
	Type               string             `json:"type"`
	Status             string             `json:"status"`
	Extended           bool               `json:"extended"`
	ExtensionReason    string             `json:"extension_reason,omitempty"`
	ReceivedAt         time.Time          `json:"received_at"`
	ClockStartedAt     *time.Time         `json:"clock_started_at,omitempty"`
	DueDate            string             `json:"due_date,omitempty"`
	IdentityVerifiedAt *time.Time         `json:"identity_verified_at,omitempty"`
	ApprovedBy         string             `json:"approved_by,omitempty"`
	DenialReason       string             `json:"denial_reason,omitempty"`
	Blocks             []connectors.Block `json:"blocks,omitempty"`
	Connectors         []connectorOutcome `json:"connectors,omitempty"`
	Export             *exportView        `json:"export,omitempty"`
	Steps              []domain.Step      `json:"steps"`
	// Identifiers are shown to staff roles only.
	Identifiers   []requests.Identifier `json:"identifiers,omitempty"`
	Closed        bool                  `json:"closed,omitempty"`
	FailureReason string                `json:"failure_reason,omitempty"`
}

type connectorOutcome struct {
	Connector string `json:"connector"`
	Action    string `json:"action"`
	Status    string `json:"status"`
	Error     string `json:"error,omitempty"`
}

type exportView struct {
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

func viewOf(st domain.RequestState) requestView {
	v := requestView{
		RequestID: st.RequestID, Type: st.Type, Status: st.Status, Extended: st.Extended,
		ExtensionReason: st.ExtensionReason, ReceivedAt: st.ReceivedAt, ClockStartedAt: st.ClockStartedAt,
		DueDate: st.DueDate, IdentityVerifiedAt: st.IdentityVerifiedAt, ApprovedBy: st.ApprovedBy,
		DenialReason: st.DenialReason, Blocks: st.Blocks, Steps: st.Steps,
		Closed: st.Closed, FailureReason: st.FailureReason,
	}
	if v.Steps == nil {
		v.Steps = []domain.Step{}
	}
	for _, o := range st.Connectors {
		v.Connectors = append(v.Connectors, connectorOutcome{Connector: o.Connector, Action: o.Action, Status: o.Status, Error: o.Error})
	}
	if st.Export != nil {
		v.Export = &exportView{SHA256: st.Export.SHA256, Bytes: st.Export.Bytes}
	}
	return v
}
