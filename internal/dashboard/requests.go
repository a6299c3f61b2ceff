package dashboard

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// pageSize is how many requests one page of the deadline list shows.
const pageSize = 25

// DueSoonDays is how near a due date must be for the list to mark it due soon.
const DueSoonDays = 7

// channels are the channels Lethe records (the filter offers these).
var channels = []string{"api", "myaccount", "kafka", "slack"}

// outcomes are the statuses a connector result can have.
var outcomes = []string{"pending", "succeeded", "failed"}

type requestsView struct {
	Types, Statuses, Channels, Outcomes, Due []option
	Rows                                     []requestRow
	Page                                     int
	Prev, Next                               string
	Filtered                                 bool
}

type requestRow struct {
	requests.Summary
	DaysLeft       int
	HasDue         bool
	Overdue, Soon  bool
	Open           bool
	DaysLeftPhrase string
}

// DeadlineFilter is the deadline list's filter as the page's query gives it: status "" means
// every open request, "any" every request; due "7" those due within DueSoonDays (overdue
// included), "overdue" those past their due date.
func (h *handler) deadlineFilter(tenant string, q map[string][]string) (requests.Filter, int) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	page := atoiDefault(get("page"), 1)
	f := requests.Filter{Limit: pageSize + 1, Offset: (page - 1) * pageSize}
	if t := get("type"); slices.Contains(domain.RequestTypes, t) {
		f.Type = t
	}
	switch st := get("status"); {
	case st == "":
		f.Open = true
	case st == "any":
	case slices.Contains(statuses, st):
		f.Status = st
	default:
		f.Open = true
	}
	if c := get("channel"); slices.Contains(channels, c) {
		f.Channel = c
	}
	if o := get("outcome"); slices.Contains(outcomes, o) {
		f.Outcome = o
	}
	today := h.today(tenant)
	switch get("due") {
	case "7":
		f.DueBefore = today.AddDate(0, 0, DueSoonDays+1).Format(time.DateOnly)
	case "overdue":
		f.DueBefore = today.Format(time.DateOnly)
	}
	return f, page
}

var statuses = []string{
	domain.StatusReceived, domain.StatusIdentityPending, domain.StatusPendingApproval, domain.StatusBlocked,
	domain.StatusInProgress, domain.StatusCompleted, domain.StatusDenied, domain.StatusFailed, domain.StatusCanceled,
}

func (h *handler) requestList(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	f, page := h.deadlineFilter(s.Tenant, q)
	rows, err := h.svc.List(r.Context(), s.Tenant, f)
	if err != nil {
		h.failed(w, r, s, "list the requests", err)
		return
	}
	rv := &requestsView{
		Types:    append([]option{{Value: "", Label: "any type"}}, options(q.Get("type"), domain.RequestTypes...)...),
		Statuses: append([]option{{Value: "", Label: "open"}, {Value: "any", Label: "any status", Selected: q.Get("status") == "any"}}, options(q.Get("status"), statuses...)...),
		Channels: append([]option{{Value: "", Label: "any channel"}}, options(q.Get("channel"), channels...)...),
		Outcomes: append([]option{{Value: "", Label: "any outcome"}}, options(q.Get("outcome"), outcomes...)...),
		Due: []option{{Value: "", Label: "any time"}, {Value: "7", Label: "within 7 days", Selected: q.Get("due") == "7"},
			{Value: "overdue", Label: "overdue", Selected: q.Get("due") == "overdue"}},
		Page:     page,
		Filtered: len(q) > 0,
	}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		rv.Next = pageQuery(q, "page", itoa(page+1))
	}
	if page > 1 {
		rv.Prev = pageQuery(q, "page", itoa(page-1))
	}
	today := h.today(s.Tenant)
	for _, row := range rows {
		rv.Rows = append(rv.Rows, h.requestRow(row, today))
	}
	v := h.view(w, r, s, "Deadlines")
	v.Requests = rv
	h.render(w, r, http.StatusOK, "requests", v)
}

func (h *handler) requestRow(row requests.Summary, today time.Time) requestRow {
	out := requestRow{Summary: row, Open: !domain.Terminal(row.Status)}
	due, err := time.Parse(time.DateOnly, row.DueDate)
	if err != nil {
		return out
	}
	out.HasDue = true
	out.DaysLeft = int(due.Sub(today).Hours() / 24)
	out.Overdue = out.Open && out.DaysLeft < 0
	out.Soon = out.Open && !out.Overdue && out.DaysLeft <= DueSoonDays
	out.DaysLeftPhrase = daysPhrase(out.DaysLeft)
	return out
}

func daysPhrase(n int) string {
	switch {
	case n == 0:
		return "due today"
	case n == 1:
		return "1 day left"
	case n == -1:
		return "1 day overdue"
	case n < 0:
		return itoa(-n) + " days overdue"
	}
	return itoa(n) + " days left"
}

// requestView is one request's page.
type requestView struct {
	State    domain.RequestState
	Row      requestRow
	Events   []store.Event
	Blocks   []connectors.Block
	Actions  []action
	Failed   bool
	DoneNote string
}

// action is one decision the page offers, with whether it asks for a reason.
type action struct {
	Name, Label, Hint string
	Reason, Danger    bool
}

// actions are the decisions staff can send a request, each a workflow update, offered to the
// roles the API lets send it.
var actions = []decision{
	{action{Name: "approve", Label: "Approve"}, workflows.UpdateApprove, "approveRequest",
		func(st domain.RequestState) bool { return st.Status == domain.StatusPendingApproval }},
	{action{Name: "deny", Label: "Deny", Hint: "The reason is sent to the subject (for example: manifestly unfounded).", Reason: true, Danger: true}, workflows.UpdateDeny, "denyRequest",
		func(st domain.RequestState) bool { return st.Status == domain.StatusPendingApproval }},
	{action{Name: "extend", Label: "Extend the deadline", Hint: "The reason is sent to the subject with the new due date.", Reason: true}, workflows.UpdateExtend, "extendRequest",
		func(st domain.RequestState) bool {
			return !domain.Terminal(st.Status) && !st.Extended && st.DueDate != ""
		}},
	{action{Name: "retry", Label: "Retry failed connectors"}, workflows.UpdateRetry, "retryRequest",
		func(st domain.RequestState) bool { return st.Status == domain.StatusFailed || anyFailed(st) }},
	{action{Name: "cancel", Label: "Cancel the request", Reason: true, Danger: true}, workflows.UpdateCancel, "cancelRequest",
		func(st domain.RequestState) bool { return !domain.Terminal(st.Status) }},
}

// decision is an action with the workflow update it sends, the API operation whose roles may
// send it, and when it applies.
type decision struct {
	action
	update, op string
	when       func(st domain.RequestState) bool
}

func anyFailed(st domain.RequestState) bool {
	return !domain.Terminal(st.Status) && slices.ContainsFunc(st.Connectors, func(o domain.ConnectorOutcome) bool { return o.Status == "failed" })
}

var doneNotes = map[string]string{
	"approve": "Approved: the request goes ahead.", "deny": "Denied: the subject is told why.",
	"extend": "Extended: the subject is told the new due date.", "retry": "Retrying the failed connectors.",
	"cancel": "Canceled.",
}

func (h *handler) requestPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.showRequest(w, r, s, http.StatusOK, "")
}

func (h *handler) showRequest(w http.ResponseWriter, r *http.Request, s *session, status int, problem string) {
	id := r.PathValue("id")
	st, err := h.svc.Get(r.Context(), s.Tenant, id)
	if err != nil {
		h.failed(w, r, s, "read the request", err)
		return
	}
	events, err := h.svc.Store.Audit().List(r.Context(), store.AuditFilter{TenantID: s.Tenant, RequestID: id, Limit: 1000})
	if err != nil {
		h.failed(w, r, s, "read the request's timeline", err)
		return
	}
	slices.Reverse(events) // oldest first: a timeline
	rv := &requestView{State: st, Events: events, Blocks: st.Blocks, Failed: anyFailed(st), DoneNote: doneNotes[r.URL.Query().Get("done")]}
	rv.Row = h.requestRow(requests.Summary{ID: st.RequestID, Type: st.Type, Status: st.Status, DueDate: st.DueDate}, h.today(s.Tenant))
	for _, a := range actions {
		if a.when(st) && h.can(s.Role, a.op) {
			rv.Actions = append(rv.Actions, a.action)
		}
	}
	v := h.view(w, r, s, "Request "+st.RequestID)
	v.Request = rv
	v.Error = problem
	h.render(w, r, status, "request", v)
}

// decide sends the action to the request's workflow through the request service, as Slack
// and the CLI do, and shows the request again.
func (h *handler) decide(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("action")
	i := slices.IndexFunc(actions, func(a decision) bool { return a.Name == name })
	if i < 0 {
		h.problem(w, r, s, http.StatusNotFound, "Page not found", "There is no such action.")
		return
	}
	a := actions[i]
	if !h.can(s.Role, a.op) {
		h.problem(w, r, s, http.StatusForbidden, "Not for your role", "The "+s.Role+" role may not "+a.Name+" requests.")
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if a.Reason && reason == "" {
		h.showRequest(w, r, s, http.StatusUnprocessableEntity, "Give a reason to "+a.Name+" the request.")
		return
	}
	id := r.PathValue("id")
	_, err := h.svc.Decide(r.Context(), s.Tenant, id, a.update, workflows.Decision{Actor: s.Actor(), Reason: reason})
	switch {
	case errors.Is(err, requests.ErrRejected):
		h.showRequest(w, r, s, http.StatusConflict, strings.TrimPrefix(err.Error(), requests.ErrRejected.Error()+": "))
		return
	case err != nil:
		h.failed(w, r, s, a.Name+" the request", err)
		return
	}
	http.Redirect(w, r, h.base+"/requests/"+id+"?done="+a.Name, http.StatusSeeOther)
}

func itoa(n int) string { return strconv.Itoa(n) }
