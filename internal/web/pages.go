package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/internal/deadline"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/requests"
)

//go:embed templates
var files embed.FS

var pages = func() map[string]*template.Template {
	base := template.Must(template.ParseFS(files, "templates/layout.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"start", "verify", "status", "problem"} {
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(files, "templates/"+name+".html"))
	}
	return out
}()

var css = func() []byte {
	b, err := files.ReadFile("templates/style.css")
	if err != nil {
		panic(err)
	}
	return b
}()

func serveCSS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(css)
}

// fieldError is one problem with what the subject entered: shown in the summary at the top
// (linking to Anchor) and next to the field (id Field-error).
type fieldError struct {
	Field, Anchor, Message string
}

// view is what every page template gets.
type view struct {
	Title      string
	TenantName string
	Contact    string
	Base       string
	CSRF       string
	Errors     []fieldError

	// start
	Types        []typeChoice
	ChangeFields []changeField
	Form         form
	// verify
	ID     string
	Notice string
	// Delivery is where the code went and which channel a new one may take.
	Delivery requests.CodeDelivery
	// status
	Request *statusView
	// problem
	Problem *problem
}

// Texted reports that the code went by text, for the templates.
func (v view) Texted() bool { return v.Delivery.Channel == identity.ChannelSMS }

// Err returns the error for a field, for the templates.
func (v view) Err(field string) *fieldError {
	for i := range v.Errors {
		if v.Errors[i].Field == field {
			return &v.Errors[i]
		}
	}
	return nil
}

func (h *handler) view(w http.ResponseWriter, r *http.Request, title string) view {
	return view{Title: title, TenantName: h.tenantName, Contact: h.contact, Base: h.base, CSRF: h.csrfToken(w, r)}
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, code int, page string, v view) {
	var buf bytes.Buffer
	if err := pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.ErrorContext(r.Context(), "myaccount: rendering page failed", "page", page, "error", err.Error())
		http.Error(w, "Sorry, this page could not be shown.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// typeChoice is one right, explained in plain words.
type typeChoice struct {
	Value, Label, Explain string
}

var typeChoices = []typeChoice{
	{domain.TypeAccess, "Get a copy of your data",
		"See what personal data we hold about you, why we use it, where it came from and who we share it with. You get a file to download."},
	{domain.TypePortability, "Take your data to another service",
		"Get the data you gave us in a file a computer can read (JSON and CSV), to keep or to give to another company."},
	{domain.TypeRectification, "Correct your data",
		"Tell us what is wrong or out of date, and we fix it everywhere we hold it."},
	{domain.TypeErasure, "Delete your data",
		"Ask us to erase your personal data. Records the law makes us keep, such as invoices, are kept without your name. If you have a booking coming up, we tell you and wait."},
	{domain.TypeRestriction, "Pause the use of your data",
		"We keep your data but stop using it, for example while you dispute that it is correct."},
	{domain.TypeObjection, "Stop marketing to you",
		"We stop using your data for marketing, straight away and for good."},
}

func typeLabel(t string) string {
	for _, c := range typeChoices {
		if c.Value == t {
			return c.Label
		}
	}
	return t
}

// changeField is a detail a rectification can correct.
type changeField struct{ Name, Label string }

var changeFields = []changeField{
	{"first_name", "First name"}, {"last_name", "Last name"}, {"phone", "Phone number"},
	{"street", "Street and number"}, {"postcode", "Postcode"}, {"city", "Town or city"},
}

// form is what the subject entered on the start page, kept to show it again with errors.
type form struct {
	Type, Email, Phone, CustomerID string
	Changes                        map[string]string
}

// Change is the value entered for a correction, for the templates.
func (f form) Change(name string) string { return f.Changes[name] }

// HasChanges reports whether any correction was entered.
func (f form) HasChanges() bool { return len(f.Changes) > 0 }

// statusView is a request as the subject sees it: plain words, no internal names.
type statusView struct {
	ID, TypeLabel, Received    string
	StatusLabel, StatusExplain string
	Tone                       string
	Reasons                    []string
	DueDate, DueISO            string
	Extended                   bool
	ExtensionReason            string
	Done                       bool
	Download, Size, Checksum   string
	ExportDeleted              bool
	Steps                      []stepView
}

type stepView struct{ When, ISO, Text string }

// statusWords says what each status means to the subject.
var statusWords = map[string][2]string{
	domain.StatusReceived:        {"Received", "We have your request."},
	domain.StatusIdentityPending: {"Waiting for you to confirm it is you", "Enter the code we emailed you."},
	domain.StatusPendingApproval: {"Being reviewed", "Someone in our team is checking your request before we act on it."},
	domain.StatusBlocked:         {"On hold", "We cannot go ahead yet, for the reason below. We will check again and tell you by email."},
	domain.StatusInProgress:      {"In progress", "We are working on your request in every system that holds your data."},
	domain.StatusCompleted:       {"Done", "We have finished your request and emailed you."},
	domain.StatusDenied:          {"Refused", "We cannot do what you asked, for the reason below. You can complain to your data protection authority."},
	domain.StatusFailed:          {"Delayed", "Something went wrong on our side. Our team has been told and will try again; the deadline still applies."},
	domain.StatusCanceled:        {"Closed", "This request was closed. You can make a new one at any time."},
}

var stepWords = map[string]string{
	domain.StatusReceived:        "We received your request",
	domain.StatusIdentityPending: "We emailed you a code to confirm it is you",
	domain.StatusPendingApproval: "Our team started reviewing your request",
	domain.StatusBlocked:         "Your request was put on hold",
	domain.StatusInProgress:      "We started working on your request",
	domain.StatusCompleted:       "Your request was completed",
	domain.StatusDenied:          "Your request was refused",
	domain.StatusFailed:          "Something went wrong on our side",
	domain.StatusCanceled:        "Your request was closed",
}

func (h *handler) statusView(st domain.RequestState, loc *time.Location) *statusView {
	words, ok := statusWords[st.Status]
	if !ok {
		words = [2]string{st.Status, ""}
	}
	v := &statusView{
		ID: st.RequestID, TypeLabel: typeLabel(st.Type), Received: longDate(st.ReceivedAt.In(loc)),
		StatusLabel: words[0], StatusExplain: words[1], Tone: "open",
		Extended: st.Extended, ExtensionReason: st.ExtensionReason, Done: domain.Terminal(st.Status),
	}
	if st.Closed {
		// Nothing retries a closed request: the subject hears from staff instead.
		v.StatusExplain = "Something went wrong on our side and your request stopped. Our team has been told and will contact you; the deadline still applies."
	}
	if st.Status == domain.StatusIdentityPending && st.IdentityVerifiedAt != nil {
		// Verified a moment ago; the workflow records the next status in a moment.
		v.StatusLabel, v.StatusExplain = "Confirmed", "Thank you for confirming it is you. We are starting on your request."
	}
	switch st.Status {
	case domain.StatusCompleted:
		v.Tone = "done"
	case domain.StatusBlocked, domain.StatusDenied, domain.StatusFailed:
		v.Tone = "attention"
	}
	if st.Status == domain.StatusBlocked {
		for _, b := range st.Blocks {
			v.Reasons = append(v.Reasons, b.Reason)
		}
	}
	if st.Status == domain.StatusDenied && st.DenialReason != "" {
		v.Reasons = append(v.Reasons, st.DenialReason)
	}
	if d, err := time.Parse(deadline.DateLayout, st.DueDate); err == nil {
		v.DueDate, v.DueISO = longDate(d), st.DueDate
	}
	prev := ""
	for _, s := range st.Steps {
		var text string
		switch {
		case strings.HasPrefix(s.Note, "identity verified"):
			text = "You confirmed it is you"
		case strings.HasPrefix(s.Note, "approved"):
			text = "Our team approved your request"
		case s.Status != prev:
			text = stepWords[s.Status]
		}
		prev = s.Status
		if text == "" {
			continue // a note staff need, not news for the subject
		}
		at := s.At.In(loc)
		v.Steps = append(v.Steps, stepView{When: longDate(at) + ", " + at.Format("15:04"), ISO: s.At.UTC().Format(time.RFC3339), Text: text})
	}
	return v
}

func longDate(t time.Time) string { return t.Format("Monday 2 January 2006") }

func humanSize(n int64) string {
	switch {
	case n <= 0:
		return ""
	case n < 1024:
		return fmt.Sprintf("%d bytes", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.0f KB", float64(n)/1024)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
	}
}

// problem is a page that only explains something went wrong and what to do.
type problem struct {
	Title string
	Text  []string
	Link  *link
}

type link struct{ Href, Text string }

type problemKind int

const (
	problemNotFound problemKind = iota
	problemExpiredForm
	problemNotBound
	problemUnavailable
	problemNoExport
	problemTooLarge
)

func (h *handler) problem(w http.ResponseWriter, r *http.Request, code int, k problemKind) {
	p := &problem{}
	switch k {
	case problemNotFound:
		p.Title = "Page not found"
		p.Text = []string{"If you typed the web address, check it is correct. If you followed a link from an email, the request may have been closed."}
		p.Link = &link{h.base, "Go to the start"}
	case problemExpiredForm:
		p.Title = "Please try again"
		p.Text = []string{"For your security, we could not accept that form. This happens when the page was open for a long time, was sent from another website, or your browser blocks cookies.",
			"Go back, reload the page and send it again. This site needs cookies to keep your request private."}
		p.Link = &link{h.base, "Go to the start"}
	case problemNotBound:
		p.Title = "Open this request in the browser you used"
		p.Text = []string{"To keep your data private, a request’s status can only be seen in the browser where its code was entered.",
			"Open the link on that device, or make a new request here. We will email you about every step either way."}
		p.Link = &link{h.base, "Make a new request"}
	case problemUnavailable:
		p.Title = "Sorry, something went wrong"
		p.Text = []string{"We could not complete that just now. Nothing you entered has been lost on our side. Please try again in a few minutes."}
	case problemNoExport:
		p.Title = "Your data is not ready yet"
		p.Text = []string{"We email you as soon as your copy is ready to download."}
		p.Link = &link{h.requestPath(r.PathValue("id")), "Back to your request"}
	case problemTooLarge:
		p.Title = "That was too much to send"
		p.Text = []string{"The form you sent was larger than we accept. Go back, shorten what you entered (corrections especially) and send it again."}
		p.Link = &link{h.base, "Go to the start"}
	}
	h.renderProblem(w, r, code, p)
}

// rateLimited answers 429 with Retry-After and a page saying how long to wait.
func (h *handler) rateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := limits.Seconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	when := "in a minute"
	if mins := (secs + 59) / 60; mins > 1 {
		when = fmt.Sprintf("in %d minutes", mins)
	}
	h.renderProblem(w, r, http.StatusTooManyRequests, &problem{
		Title: "Please wait before trying again",
		Text: []string{"We have had too many attempts from you or for this email address in a short time. To keep requests and codes safe, we pause for a while.",
			"Please try again " + when + ". Anything you sent before this is safe with us."},
		Link: &link{h.base, "Go to the start"},
	})
}

func (h *handler) renderProblem(w http.ResponseWriter, r *http.Request, code int, p *problem) {
	v := h.view(w, r, p.Title)
	v.Problem = p
	h.render(w, r, code, "problem", v)
}
