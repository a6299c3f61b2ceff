package dashboard

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/store"
)

// activityPage is how many events one page of the activity stream shows.
const activityPage = 50

type activityView struct {
	Actor, Action, Request, Subject, Since, Until string
	Events                                        []store.Event
	Older, CSV                                    string
	Chain                                         *chainState
}

var hexRef = regexp.MustCompile(`^[0-9a-f]{64}$`)

// activityFilter reads the stream's filter from the query. The subject may be given as its
// reference or as an email address, phone number or customer number, turned into the
// reference here (the trail holds no identifiers).
func (h *handler) activityFilter(tenant string, q url.Values) (store.AuditFilter, *activityView, string) {
	av := &activityView{
		Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Request: strings.TrimSpace(q.Get("request")), Subject: strings.TrimSpace(q.Get("subject")),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")),
	}
	f := store.AuditFilter{TenantID: tenant, Actor: av.Actor, Action: av.Action, RequestID: av.Request, Limit: activityPage}
	if av.Subject != "" {
		f.SubjectRef = h.subjectRef(tenant, av.Subject)
	}
	for _, d := range []struct {
		v    string
		to   *time.Time
		days int
	}{{av.Since, &f.Since, 0}, {av.Until, &f.Until, 1}} {
		if d.v == "" {
			continue
		}
		day, err := time.Parse(time.DateOnly, d.v)
		if err != nil {
			return f, av, "Dates are written YYYY-MM-DD, for example 2026-03-01."
		}
		*d.to = day.AddDate(0, 0, d.days) // until is inclusive: the whole day
	}
	if v := q.Get("before"); v != "" {
		f.Before, _ = strconv.ParseInt(v, 10, 64)
	}
	return f, av, ""
}

func (h *handler) subjectRef(tenant, s string) string {
	if hexRef.MatchString(s) {
		return s
	}
	sub := connectors.Subject{CustomerID: s}
	switch {
	case strings.Contains(s, "@"):
		sub = connectors.Subject{Email: s}
	case strings.HasPrefix(s, "+"):
		sub = connectors.Subject{Phone: s}
	}
	return h.svc.SubjectKey(tenant, sub)
}

func (h *handler) activity(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	f, av, problem := h.activityFilter(s.Tenant, q)
	v := h.view(w, r, s, "Activity")
	v.Activity = av
	status := http.StatusOK
	if problem != "" {
		v.Error, status = problem, http.StatusBadRequest
	} else {
		events, err := h.svc.Store.Audit().List(r.Context(), f)
		if err != nil {
			h.failed(w, r, s, "read the activity stream", err)
			return
		}
		av.Events = events
		if len(events) == f.Limit {
			av.Older = pageQuery(q, "before", strconv.FormatInt(events[len(events)-1].ID, 10))
		}
	}
	av.CSV = pageQuery(q, "before", "")
	chain := h.chain(r.Context(), s.Tenant, false)
	av.Chain = &chain
	v.Notice = map[string]string{"1": "The audit chain was verified just now."}[q.Get("verified")]
	h.render(w, r, status, "activity", v)
}

// pageVerifyLimit bounds the verification a page view runs when none was made yet; a longer
// chain is verified by "Verify now" (or lethe audit verify).
const pageVerifyLimit = 2 * time.Second

// chain returns the tenant's last verification, running one when there is none or when asked.
func (h *handler) chain(ctx context.Context, tenant string, now bool) chainState {
	if st, ok := h.chains.get(tenant); ok && !now {
		return st
	}
	limit := pageVerifyLimit
	if now {
		limit = time.Minute
	}
	vctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	n, err := h.svc.Store.Audit().Verify(vctx, tenant)
	st := chainState{At: h.now(), Events: n, OK: err == nil, Headline: "Audit chain verified"}
	var broken *store.BrokenLink
	switch {
	case errors.As(err, &broken):
		st.Headline, st.Problem = "Audit chain broken", broken.Error()
	case errors.Is(err, context.DeadlineExceeded) || vctx.Err() != nil:
		st.Headline, st.Problem = "Audit chain not verified yet", "the chain is too long to check while a page loads; use Verify now or lethe audit verify"
	case err != nil:
		st.Headline, st.Problem = "Audit chain not verified", "Lethe failed to read the chain (see its log)"
		h.log.Error("dashboard: verifying the audit chain failed", "tenant", tenant, "error", err)
	}
	h.chains.put(tenant, st)
	return st
}

func (h *handler) verifyChain(w http.ResponseWriter, r *http.Request, s *session) {
	h.chain(r.Context(), s.Tenant, true)
	http.Redirect(w, r, h.base+"/activity?verified=1", http.StatusSeeOther)
}

// csvBatch is how many events the CSV export reads at a time: the file streams, whatever the
// trail's length.
const csvBatch = 1000

// activityCSV streams every event the filter selects, newest first.
func (h *handler) activityCSV(w http.ResponseWriter, r *http.Request, s *session) {
	f, _, problem := h.activityFilter(s.Tenant, r.URL.Query())
	if problem != "" {
		h.problem(w, r, s, http.StatusBadRequest, "Bad filter", problem)
		return
	}
	f.Limit = csvBatch
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="lethe-activity-`+s.Tenant+`.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "occurred_at", "actor", "action", "request_id", "breach_id", "subject_ref", "detail", "seq", "hash"})
	flusher, _ := w.(http.Flusher)
	for {
		events, err := h.svc.Store.Audit().List(r.Context(), f)
		if err != nil {
			// The header is sent: the cut-short file ends without its last rows; say so in the log.
			h.logFailure(r, "exporting the activity stream", err)
			return
		}
		for _, e := range events {
			detail, _ := json.Marshal(e.Detail)
			_ = cw.Write([]string{
				strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), cell(e.Actor), cell(e.Action),
				cell(e.RequestID), cell(e.BreachID), e.SubjectRef, cell(string(detail)), strconv.FormatInt(e.Seq, 10), e.Hash,
			})
		}
		cw.Flush()
		if flusher != nil {
			flusher.Flush()
		}
		if len(events) < f.Limit || cw.Error() != nil {
			return
		}
		f.Before = events[len(events)-1].ID
	}
}

// cell keeps a value from being read as a formula by a spreadsheet (CSV injection).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
