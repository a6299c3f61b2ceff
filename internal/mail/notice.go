// Package mail tells data subjects what is happening with their privacy requests and breaches
// that affect them, and tells a tenant's staff and DPO when a request's deadline nears or has
// passed. It renders one notice per message from embedded templates (HTML and text, per
// language, branded per tenant) and sends it through Mailgun.
//
// Subject lines carry only the tenant's name, the request reference, the request type and due
// dates: mail subjects are logged and previewed everywhere, so nothing else about the subject
// goes there. Errors name the missing or invalid field, never its value.
package mail

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of notice; each kind has its own templates and required data.
type Kind string

// The notices Lethe sends to data subjects.
const (
	KindVerificationCode   Kind = "verification_code"
	KindAcknowledgement    Kind = "acknowledgement"
	KindExtension          Kind = "extension"
	KindBlocked            Kind = "blocked"
	KindBlockedClosed      Kind = "blocked_closed"
	KindDenial             Kind = "denial"
	KindExportReady        Kind = "export_ready"
	KindCompletion         Kind = "completion"
	KindIdentityExpired    Kind = "identity_expired"
	KindBreachNotification Kind = "breach_notification"
	// Staff need more from the subject before they decide (the question is Data.Question).
	KindInformationRequest Kind = "information_request"
)

// The notices Lethe sends to a tenant's own people. They carry the request's reference, type and
// due date and a link, never anything about the subject.
const (
	KindDeadlineReminder  Kind = "deadline_reminder"
	KindOverdueEscalation Kind = "overdue_escalation"
	// A breach's notification clock nears its limit, or has passed it with nobody notified.
	KindBreachClockReminder   Kind = "breach_clock_reminder"
	KindBreachClockEscalation Kind = "breach_clock_escalation"
)

// Staff reports whether a kind of notice goes to the tenant's staff or DPO, not to a subject.
func (k Kind) Staff() bool { return specs[k].staff }

// Kinds returns every kind of notice, in a stable order.
func Kinds() []Kind {
	return []Kind{
		KindVerificationCode, KindAcknowledgement, KindExtension, KindBlocked, KindBlockedClosed, KindDenial,
		KindExportReady, KindCompletion, KindIdentityExpired, KindBreachNotification, KindInformationRequest,
		KindDeadlineReminder, KindOverdueEscalation, KindBreachClockReminder, KindBreachClockEscalation,
	}
}

// RequestTypes are the request types a notice can be about.
func RequestTypes() []string {
	return []string{"access", "portability", "rectification", "erasure", "restriction", "objection"}
}

// Notice is one message to one data subject.
//
// Data keys by kind (required unless marked optional; every kind also takes an optional Name for
// the greeting):
//
//	verification_code    RequestID, Code, ExpiresInMinutes (optional)
//	acknowledgement      RequestID, RequestType, DueDate
//	extension            RequestID, RequestType, Reason, NewDueDate
//	blocked              RequestID, Reasons (list of readable reasons), RecheckDate (optional)
//	blocked_closed       RequestID, Reasons (list of readable reasons)
//	denial               RequestID, RequestType, Reason
//	export_ready         RequestID, Link, LinkExpiresAt (optional)
//	completion           RequestID, RequestType
//	identity_expired     RequestID, RequestType
//	breach_notification  Nature, Consequences, Measures, ContactPoint (defaults to
//	                     Tenant.ContactEmail), Recommendations (optional list), Reference (optional)
//	deadline_reminder    RequestID, RequestType, DueDate, Link (optional; to staff)
//	overdue_escalation   RequestID, RequestType, DueDate, Link (optional; to the DPO)
//	breach_clock_reminder    BreachID, Notify (who must be told), Regime, DueAt, Limit
//	                         (optional), Link (optional; to staff)
//	breach_clock_escalation  the same (to the DPO)
//
// Dates may be strings (shown as given) or time.Time (shown as 2006-01-02, or with the time for
// keys ending in "At"). RequestType is one of RequestTypes.
type Notice struct {
	Kind     Kind
	To       string
	Tenant   Branding
	Language string
	Data     map[string]any
}

// Branding is how a tenant's notices look and who they come from.
type Branding struct {
	Name         string
	ContactEmail string
	// LogoURL is an http(s) image URL shown in the HTML header; anything else is left out.
	LogoURL string
	// Color is the header colour as #rgb or #rrggbb; anything else falls back to a neutral one.
	Color string
}

// spec lists what each kind needs. Lists are data keys holding a list of strings.
type spec struct {
	required []string
	optional []string
	lists    []string
	links    []string
	typed    bool // RequestType must be one of RequestTypes
	staff    bool // to the tenant's staff or DPO, not to a subject
}

var specs = map[Kind]spec{
	KindVerificationCode:      {required: []string{"RequestID", "Code"}, optional: []string{"ExpiresInMinutes"}},
	KindAcknowledgement:       {required: []string{"RequestID", "RequestType", "DueDate"}, typed: true},
	KindExtension:             {required: []string{"RequestID", "RequestType", "Reason", "NewDueDate"}, typed: true},
	KindBlocked:               {required: []string{"RequestID", "Reasons"}, optional: []string{"RecheckDate"}, lists: []string{"Reasons"}},
	KindBlockedClosed:         {required: []string{"RequestID", "Reasons"}, lists: []string{"Reasons"}},
	KindDenial:                {required: []string{"RequestID", "RequestType", "Reason"}, typed: true},
	KindInformationRequest:    {required: []string{"RequestID", "RequestType", "Question"}, typed: true},
	KindExportReady:           {required: []string{"RequestID", "Link"}, optional: []string{"LinkExpiresAt"}, links: []string{"Link"}},
	KindCompletion:            {required: []string{"RequestID", "RequestType"}, typed: true},
	KindIdentityExpired:       {required: []string{"RequestID", "RequestType"}, typed: true},
	KindBreachNotification:    {required: []string{"Nature", "Consequences", "Measures", "ContactPoint"}, optional: []string{"Reference", "Recommendations"}, lists: []string{"Recommendations"}},
	KindDeadlineReminder:      {required: []string{"RequestID", "RequestType", "DueDate"}, optional: []string{"Link"}, links: []string{"Link"}, typed: true, staff: true},
	KindOverdueEscalation:     {required: []string{"RequestID", "RequestType", "DueDate"}, optional: []string{"Link"}, links: []string{"Link"}, typed: true, staff: true},
	KindBreachClockReminder:   {required: []string{"BreachID", "Notify", "Regime", "DueAt"}, optional: []string{"Limit", "Link"}, links: []string{"Link"}, staff: true},
	KindBreachClockEscalation: {required: []string{"BreachID", "Notify", "Regime", "DueAt"}, optional: []string{"Limit", "Link"}, links: []string{"Link"}, staff: true},
}

// FieldError says which field of a notice is missing or invalid. It never carries the value.
type FieldError struct {
	Kind    Kind
	Field   string // e.g. "Data.DueDate", "Tenant.Name"
	Problem string // "is missing", "is not valid", ...
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("mail: %s notice: %s %s", e.Kind, e.Field, e.Problem)
}

// data is a notice's Data after checking: strings and lists of strings only.
type data map[string]any

func normalize(n Notice) (data, error) {
	sp, ok := specs[n.Kind]
	if !ok {
		return nil, fmt.Errorf("mail: unknown notice kind %q", n.Kind)
	}
	if strings.TrimSpace(n.Tenant.Name) == "" {
		return nil, &FieldError{n.Kind, "Tenant.Name", "is missing"}
	}
	if c := strings.TrimSpace(n.Tenant.ContactEmail); c != "" {
		if _, err := mail.ParseAddress(c); err != nil {
			return nil, &FieldError{n.Kind, "Tenant.ContactEmail", "is not a valid address"}
		}
	}
	out := data{}
	keys := append(append(append([]string{}, sp.required...), sp.optional...), "Name")
	for _, k := range keys {
		v := n.Data[k]
		if k == "ContactPoint" && isEmpty(v) {
			v = n.Tenant.ContactEmail
		}
		if slices.Contains(sp.lists, k) {
			l, ok := stringList(v)
			if !ok {
				return nil, &FieldError{n.Kind, "Data." + k, "is not a list of text"}
			}
			if len(l) > 0 {
				out[k] = l
			}
			continue
		}
		s, ok := text(k, v)
		if !ok {
			return nil, &FieldError{n.Kind, "Data." + k, "is not text, a number or a time"}
		}
		if s != "" {
			out[k] = s
		}
	}
	for _, k := range sp.required {
		if _, ok := out[k]; !ok {
			return nil, &FieldError{n.Kind, "Data." + k, "is missing"}
		}
	}
	for _, k := range sp.links {
		link, ok := out[k].(string)
		if !ok {
			continue // an optional link left out
		}
		if u, err := url.Parse(link); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, &FieldError{n.Kind, "Data." + k, "is not an http(s) URL"}
		}
	}
	if sp.typed && !slices.Contains(RequestTypes(), out["RequestType"].(string)) {
		return nil, &FieldError{n.Kind, "Data.RequestType", "is not one of " + strings.Join(RequestTypes(), ", ")}
	}
	if n.Kind == KindBlocked || n.Kind == KindBlockedClosed {
		out["RequestType"] = "erasure" // only erasure is ever blocked by a preflight check
	}
	return out, nil
}

// text turns a data value into display text; ok is false for types a template cannot show.
func text(key string, v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return strings.TrimSpace(x), true
	case time.Time:
		if x.IsZero() {
			return "", true
		}
		if strings.HasSuffix(key, "At") {
			return x.Format("2006-01-02 15:04 MST"), true
		}
		return x.Format("2006-01-02"), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64: // numbers decoded from JSON (workflow history)
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case fmt.Stringer:
		return strings.TrimSpace(x.String()), true
	}
	return "", false
}

func stringList(v any) ([]string, bool) {
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	switch x := v.(type) {
	case nil:
	case string:
		add(x)
	case []string:
		for _, s := range x {
			add(s)
		}
	case []any: // lists decoded from JSON
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			add(s)
		}
	default:
		return nil, false
	}
	return out, true
}

func isEmpty(v any) bool {
	s, ok := v.(string)
	return v == nil || ok && strings.TrimSpace(s) == ""
}

var colorRe = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

const defaultColor = "#1f2937"

// brand is Branding made safe for templates, plus the header's text colour.
type brand struct {
	Name, ContactEmail, LogoURL, Color, TextColor string
}

func makeBrand(b Branding) brand {
	out := brand{Name: strings.TrimSpace(b.Name), ContactEmail: strings.TrimSpace(b.ContactEmail), Color: defaultColor}
	if colorRe.MatchString(b.Color) {
		out.Color = strings.ToLower(b.Color)
	}
	if u, err := url.Parse(strings.TrimSpace(b.LogoURL)); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		out.LogoURL = u.String()
	}
	out.TextColor = "#ffffff"
	if light(out.Color) {
		out.TextColor = "#111827"
	}
	return out
}

// light reports whether a #rgb/#rrggbb colour needs dark text on it (approximate luminance).
func light(c string) bool {
	h := c[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	v, _ := strconv.ParseUint(h, 16, 32)
	r, g, b := float64(v>>16&0xff), float64(v>>8&0xff), float64(v&0xff)
	return 0.2126*r+0.7152*g+0.0722*b > 160
}
