package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/lethe-privacy/lethe/internal/consent"
	"github.com/lethe-privacy/lethe/internal/store"
)

// consentView is the body of GET /v1/consent: the current state of every purpose the ledger
// names for the subject, and every change in the order made.
type consentView struct {
	SubjectRef string                `json:"subject_ref"`
	Current    []store.ConsentState  `json:"current"`
	History    []store.ConsentChange `json:"history"`
}

// consent answers a subject's consent, named by reference, email address or phone number. The
// read is recorded in the audit trail with the subject's reference, never the identifier.
func (a *v1) consent(w http.ResponseWriter, r *http.Request, c *call) {
	ref, err := consent.Ref(a.svc.Cfg.Secrets.SigningKey.Value(), c.tenant, r.URL.Query().Get("subject"))
	if errors.Is(err, consent.ErrSubject) {
		writeError(w, http.StatusBadRequest, "invalid_subject", err.Error())
		return
	}
	history, err := a.svc.Store.Consent().History(r.Context(), c.tenant, ref)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	_, err = a.svc.Store.Audit().Append(r.Context(), a.svc.Store.Pool, store.Event{
		Key: "consent:viewed:" + hex.EncodeToString(b), TenantID: c.tenant, Actor: a.actor(c, ""), Action: "consent.viewed",
		SubjectRef: ref, Detail: map[string]any{"changes": len(history)},
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if history == nil {
		history = []store.ConsentChange{}
	}
	writeJSON(w, http.StatusOK, consentView{SubjectRef: ref, Current: store.CurrentConsent(history), History: history})
}
