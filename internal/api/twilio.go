package api

import (
	"context"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/intake"
)

// PurposeSMS is the consent a STOP reply withdraws and a START reply grants.
const PurposeSMS = "marketing_sms"

// TwilioInstance is one sms connector instance as its webhook needs it.
type TwilioInstance struct {
	Config *sms.Config
	Token  string // the account's auth token, which signs Twilio's webhooks
}

// TwilioWebhook records the STOP and START replies texted to a tenant's sender in the consent
// ledger, as a lethe.consent.change from source "twilio" would be: a STOP withdraws
// marketing_sms (and so starts the objection), a START grants it. Twilio posts each inbound
// text, form-encoded and signed with X-Twilio-Signature, to POST /webhooks/twilio/{instance}.
type TwilioWebhook struct {
	// Instances are the sms connector instances, by name.
	Instances map[string]TwilioInstance
	// PublicURL is http.public_url, the address Twilio calls; the signature covers it. Empty,
	// the request's own scheme and host stand in.
	PublicURL string
	// Record is intake's consent path (Intake.RecordConsent).
	Record func(ctx context.Context, c intake.Consent) error
	// Delivered records the final status of a breach notice's text (store
	// Notices.TextDelivered) for a breach of one of tenants: event delivered or failed.
	Delivered func(ctx context.Context, tenants []string, breachID string, seq int64, sid, event string, at time.Time) error
	Log       *slog.Logger
	Now       func() time.Time
}

// MountTwilio serves the inbound-text webhook of each sms connector instance on mux, and the
// status callback of the breach notices' texts, POST /webhooks/twilio/{instance}/status.
func MountTwilio(mux *http.ServeMux, h *TwilioWebhook) {
	mux.Handle("POST /webhooks/twilio/{instance}", h)
	mux.HandleFunc("POST /webhooks/twilio/{instance}/status", h.status)
}

// status records the final status of a breach notice's text from Twilio's status callback
// (activities.NoticeTextCallback: the query names the text, and the signature covers it):
// delivered, or failed (undelivered, failed), which also forgets the person's phone.
// Twilio's intermediate statuses (queued, sent, ...) are answered and ignored.
func (h *TwilioWebhook) status(w http.ResponseWriter, r *http.Request) {
	form, ok := h.verified(w, r)
	if !ok {
		return
	}
	var event string
	switch form.Get("MessageStatus") {
	case "delivered":
		event = "delivered"
	case "undelivered", "failed":
		event = "failed"
	default:
		w.WriteHeader(http.StatusNoContent)
		return
	}
	breach, sid := r.URL.Query().Get("breach"), form.Get("MessageSid")
	seq, err := strconv.ParseInt(r.URL.Query().Get("seq"), 10, 64)
	if breach == "" || err != nil || sid == "" || h.Delivered == nil {
		writeError(w, http.StatusUnprocessableEntity, "unknown_text", "the callback names no breach notice's text")
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	// Only the texts of the tenants this instance sends for: another tenant's Twilio account
	// cannot settle them.
	tenants := slices.Sorted(maps.Keys(h.Instances[r.PathValue("instance")].Config.Senders))
	if err := h.Delivered(r.Context(), tenants, breach, seq, sid, event, now().UTC()); err != nil {
		h.Log.Error("recording a breach notice text's delivery", "breach_id", breach, "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "try again later")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// verified reads a webhook's form and checks it is Twilio's for the instance named in the
// path, answering the request if not.
func (h *TwilioWebhook) verified(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	in, ok := h.Instances[r.PathValue("instance")]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no sms connector instance of that name")
		return nil, false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Twilio's webhook is application/x-www-form-urlencoded")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		if strings.Contains(err.Error(), "too large") {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the webhook body is too large")
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "invalid_form", "the body is not a form")
		return nil, false
	}
	form := r.PostForm
	if !sms.ValidSignature(in.Token, h.signedURL(r), form, r.Header.Get("X-Twilio-Signature")) || form.Get("AccountSid") != in.Config.AccountSID {
		writeError(w, http.StatusForbidden, "bad_signature", "the X-Twilio-Signature does not verify")
		return nil, false
	}
	return form, true
}

// emptyTwiML answers Twilio with no reply text (Twilio itself answers STOP and START).
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

func (h *TwilioWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	form, ok := h.verified(w, r)
	if !ok {
		return
	}
	in := h.Instances[r.PathValue("instance")]
	reply := sms.ReplyOf(form)
	if reply == sms.ReplyOther {
		writeTwiML(w)
		return
	}
	tenant, ok := in.Config.TenantOf(form.Get("To"), form.Get("MessagingServiceSid"))
	if !ok || form.Get("From") == "" || form.Get("MessageSid") == "" {
		writeError(w, http.StatusUnprocessableEntity, "unknown_sender", "the text was not sent to a sender of this instance's tenants, or names no sender or message")
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	err := h.Record(r.Context(), intake.Consent{
		TenantID: tenant, Subject: connectors.Subject{Phone: form.Get("From")}, Purpose: PurposeSMS,
		Granted: reply == sms.ReplyOptIn, ChangedAt: now().UTC(), Source: "twilio", Event: form.Get("MessageSid"),
	})
	switch {
	case bus.IsInvalid(err):
		h.Log.Warn("an sms consent reply could not be recorded", "tenant_id", tenant, "error", err)
		writeError(w, http.StatusUnprocessableEntity, "cannot_record", "the reply cannot be recorded for this tenant")
		return
	case err != nil:
		h.Log.Error("recording an sms consent reply", "tenant_id", tenant, "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "try again later")
		return
	}
	writeTwiML(w)
}

// signedURL is the URL Twilio called: the public address and the path with its query.
func (h *TwilioWebhook) signedURL(r *http.Request) string {
	base := strings.TrimRight(h.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + r.URL.RequestURI()
}

func writeTwiML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(emptyTwiML))
}
