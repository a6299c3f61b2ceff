package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/retention"
)

// setExpiry sets a subject's expiry date through the retention service.
func (a *v1) setExpiry(w http.ResponseWriter, r *http.Request, c *call) {
	if a.retention == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "retention is not served here")
		return
	}
	var in struct {
		Subject   connectors.Subject `json:"subject"`
		ExpiresAt time.Time          `json:"expires_at"`
		Actor     string             `json:"actor"`
	}
	if err := decode(c.body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", `the body must be {"subject": {"email": "..."}, "expires_at": "2027-01-31T00:00:00Z"}`)
		return
	}
	e, err := a.retention.SetExpiry(r.Context(), c.tenant, a.actor(c, in.Actor), in.Subject, in.ExpiresAt, time.Now())
	switch {
	case errors.Is(err, retention.ErrNotConfigured):
		writeError(w, http.StatusUnprocessableEntity, "not_configured", err.Error())
	case errors.Is(err, retention.ErrInvalid):
		writeError(w, http.StatusUnprocessableEntity, "invalid_request", err.Error())
	case err != nil:
		a.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, e)
	}
}
