package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/store"
)

// MailgunWebhook records Mailgun delivery events (delivered, failed, ...) of Lethe's notices in
// the audit trail. A request must carry a valid signature made with the webhook signing key,
// a timestamp within the freshness window, and a token not seen before.
type MailgunWebhook struct {
	SigningKey string
	Pool       *pgxpool.Pool
	Log        *slog.Logger
	Now        func() time.Time
	// Window bounds how old a signed timestamp may be (default 5 minutes).
	Window time.Duration
}

// MountWebhooks serves the mail provider's delivery webhook on mux.
func MountWebhooks(mux *http.ServeMux, mailgun *MailgunWebhook) {
	mux.Handle("POST /webhooks/mailgun", mailgun)
}

func (h *MailgunWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	window := h.Window
	if window <= 0 {
		window = 5 * time.Minute
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the webhook body is too large")
		return
	}
	sig, ev, err := mail.ParseWebhook(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_webhook", "the body is not a Mailgun webhook")
		return
	}
	if h.SigningKey == "" || !mail.VerifyWebhook(h.SigningKey, sig) {
		writeError(w, http.StatusForbidden, "bad_signature", "the webhook signature does not verify")
		return
	}
	if !sig.Fresh(now(), window) {
		writeError(w, http.StatusForbidden, "stale_signature", "the webhook timestamp is too old")
		return
	}
	ctx := r.Context()
	tokens := store.WebhookTokens{}
	fresh, err := tokens.Remember(ctx, h.Pool, sig.Token, now())
	if err != nil {
		h.Log.Error("recording a mail webhook token", "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "try again later")
		return
	}
	if !fresh {
		writeError(w, http.StatusForbidden, "replayed", "this webhook was already received")
		return
	}
	// Tokens older than the window can no longer verify as fresh: keep the table small.
	_ = tokens.Prune(ctx, h.Pool, now().Add(-2*window))
	if err := h.recordNotice(ctx, ev); err != nil {
		h.Log.Error("recording a breach notice's delivery", "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "try again later")
		return
	}
	if ev.RequestID != "" {
		// The tenant is the request's; an event about an unknown request records nothing.
		_, err := store.Audit{}.Append(ctx, h.Pool, store.Event{
			Key: "mailgun:" + ev.ID, At: ev.Timestamp, Actor: "mailgun", Action: "mail." + string(ev.Type), RequestID: ev.RequestID,
			Detail: map[string]any{"event": ev.Type, "kind": ev.Kind, "message_id": ev.MessageID, "severity": ev.Severity, "reason": ev.Reason},
		})
		if err != nil {
			h.Log.Error("recording a mail event", "error", err)
			writeError(w, http.StatusServiceUnavailable, "unavailable", "try again later")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "recorded"})
}

// recordNotice marks a breach notice's person delivered, or failed for good (a permanent
// failure; Mailgun retries temporary ones itself). It goes to the notice's register, not the
// audit trail: a million people would be a million events.
func (h *MailgunWebhook) recordNotice(ctx context.Context, ev mail.Event) error {
	if ev.BreachID == "" || ev.Recipient == "" {
		return nil
	}
	seq, err := strconv.ParseInt(ev.Recipient, 10, 64)
	if err != nil {
		return nil // not one of Lethe's numbers: nothing to mark
	}
	switch {
	case ev.Type == mail.EventDelivered:
		return store.Notices{}.Delivered(ctx, h.Pool, ev.BreachID, seq, "delivered", ev.Timestamp)
	case ev.Type == mail.EventFailed && ev.Severity == "permanent":
		return store.Notices{}.Delivered(ctx, h.Pool, ev.BreachID, seq, "failed", ev.Timestamp)
	}
	return nil
}
