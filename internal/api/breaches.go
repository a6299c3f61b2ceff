package api

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// breachHandlers serve /v1/breaches through the breach service; without one they answer 503.
func (a *v1) breachHandlers() map[string]func(http.ResponseWriter, *http.Request, *call) {
	hs := map[string]func(http.ResponseWriter, *http.Request, *call){
		"openBreach":           a.openBreach,
		"notifyBreachSubjects": a.notifyBreachSubjects,
		"listBreaches":         a.listBreaches,
		"getBreach":            a.getBreach,
		"updateBreachContent": a.breachEntry(workflows.UpdateBreachContent, func(c *call, body []byte) (any, error) {
			var in struct {
				Content  store.Art33             `json:"content"`
				Affected []breachclock.Residents `json:"affected"`
				Actor    string                  `json:"actor"`
			}
			err := decode(body, &in)
			return workflows.BreachContent{Art33: in.Content, Affected: in.Affected, Actor: a.actor(c, in.Actor)}, err
		}),
		"assessBreach": a.breachEntry(workflows.UpdateBreachAssessment, func(c *call, body []byte) (any, error) {
			var in workflows.BreachAssessment
			err := decode(body, &in)
			in.Actor = a.actor(c, in.Actor)
			return in, err
		}),
		"recordBreachNotification": a.breachEntry(workflows.UpdateBreachNotification, func(c *call, body []byte) (any, error) {
			var in struct {
				Rule        string    `json:"rule"`
				NotifiedAt  time.Time `json:"notified_at"`
				Reference   string    `json:"reference"`
				LateReasons string    `json:"late_reasons"`
				Exemption   string    `json:"exemption"`
				Rationale   string    `json:"rationale"`
				Actor       string    `json:"actor"`
			}
			err := decode(body, &in)
			return workflows.BreachNotification{Rule: in.Rule, NotifiedAt: in.NotifiedAt, Reference: in.Reference,
				LateReasons: in.LateReasons, Exemption: breachclock.Exemption(in.Exemption), Rationale: in.Rationale,
				Actor: a.actor(c, in.Actor)}, err
		}),
		"closeBreach": a.breachEntry(workflows.UpdateBreachClose, func(c *call, body []byte) (any, error) {
			var in workflows.Decision
			err := decode(body, &in)
			in.Actor = a.actor(c, in.Actor)
			return in, err
		}),
	}
	for op, h := range hs {
		hs[op] = func(w http.ResponseWriter, r *http.Request, c *call) {
			if a.breaches == nil {
				writeError(w, http.StatusServiceUnavailable, "unavailable", "the breach register is not served here")
				return
			}
			h(w, r, c)
		}
	}
	return hs
}

func (a *v1) openBreach(w http.ResponseWriter, r *http.Request, c *call) {
	var in struct {
		BreachID     string                  `json:"breach_id"`
		Title        string                  `json:"title"`
		AwareAt      time.Time               `json:"aware_at"`
		DeterminedAt *time.Time              `json:"determined_at"`
		Affected     []breachclock.Residents `json:"affected"`
		Content      *store.Art33            `json:"content"`
		Actor        string                  `json:"actor"`
	}
	if err := decode(c.body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "the body does not match the breach opening schema")
		return
	}
	id, err := a.breaches.Open(r.Context(), breaches.Opening{BreachID: in.BreachID, TenantID: c.tenant, Title: in.Title,
		AwareAt: in.AwareAt, DeterminedAt: in.DeterminedAt, Affected: in.Affected, Content: in.Content, OpenedBy: a.actor(c, in.Actor)})
	if errors.Is(err, breaches.ErrDuplicate) {
		writeJSON(w, http.StatusOK, map[string]string{"breach_id": id})
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/breaches/"+id)
	writeJSON(w, http.StatusCreated, map[string]string{"breach_id": id})
}

type breachSummary struct {
	ID      string    `json:"id"`
	Title   string    `json:"title"`
	Status  string    `json:"status"`
	AwareAt time.Time `json:"aware_at"`
	Risk    string    `json:"risk,omitempty"`
}

func (a *v1) listBreaches(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit")) // the document bounds it; 0 is the default
	rows, err := a.breaches.List(r.Context(), c.tenant, q.Get("status"), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]breachSummary, 0, len(rows))
	for _, b := range rows {
		out = append(out, breachSummary{ID: b.ID, Title: b.Title, Status: b.Status, AwareAt: b.AwareAt, Risk: b.Risk})
	}
	writeJSON(w, http.StatusOK, map[string]any{"breaches": out})
}

func (a *v1) getBreach(w http.ResponseWriter, r *http.Request, c *call) {
	st, err := a.breaches.Get(r.Context(), c.tenant, c.params["id"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// breachEntry sends one entry, read from the body by arg, to the breach's workflow.
func (a *v1) breachEntry(update string, arg func(c *call, body []byte) (any, error)) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		v, err := arg(c, c.body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_json", "the body does not match the schema of "+update)
			return
		}
		st, err := a.breaches.Update(r.Context(), c.tenant, c.params["id"], update, v)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
}

// notifyBreachSubjects starts notifying the people affected: a JSON body names finders for the
// connectors, a text/csv body lists the people (email[,phone[,name]]).
func (a *v1) notifyBreachSubjects(w http.ResponseWriter, r *http.Request, c *call) {
	n := breaches.Subjects{Actor: a.actor(c, r.URL.Query().Get("actor"))}
	if c.mediaType == "text/csv" {
		n.CSV = bytes.NewReader(c.body)
	} else {
		var in struct {
			Find   []workflows.SubjectFind `json:"find"`
			Resume bool                    `json:"resume"`
			Actor  string                  `json:"actor"`
		}
		if err := decode(c.body, &in); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_json", "the body does not match the schema of breach subjects")
			return
		}
		n.Find, n.Resume, n.Actor = in.Find, in.Resume, a.actor(c, in.Actor)
	}
	st, err := a.breaches.Notify(r.Context(), c.tenant, c.params["id"], n)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}
