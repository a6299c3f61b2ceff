package api

import (
	"context"
	"log/slog"
	"mime"
	"net/http"
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
	Log    *slog.Logger
	Now    func() time.Time
}

// MountTwilio serves the inbound-text webhook of each sms connector instance on mux.
func MountTwilio(mux *http.ServeMux, h *TwilioWebhook) {
	mux.Handle("POST /webhooks/twilio/{instance}", h)
}

// emptyTwiML answers Twilio with no reply text (Twilio itself answers STOP and START).
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

func (h *TwilioWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in, ok := h.Instances[r.PathValue("instance")]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no sms connector instance of that name")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Twilio's webhook is application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		if strings.Contains(err.Error(), "too large") {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the webhook body is too large")
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_form", "the body is not a form")
		return
	}
	form := r.PostForm
	if !sms.ValidSignature(in.Token, h.signedURL(r), form, r.Header.Get("X-Twilio-Signature")) || form.Get("AccountSid") != in.Config.AccountSID {
		writeError(w, http.StatusForbidden, "bad_signature", "the X-Twilio-Signature does not verify")
		return
	}
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
