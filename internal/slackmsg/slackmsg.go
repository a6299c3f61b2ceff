// Package slackmsg builds Lethe's Slack messages and modals (Block Kit) and the Web API client
// that sends them. It holds no state: the activities post and update messages through it, and
// internal/slackapp answers Slack's interactions with it.
package slackmsg

import (
	"cmp"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Action and callback IDs Slack sends back; the value of each button is the request ID.
const (
	ActionApprove = "lethe.approve"
	ActionDeny    = "lethe.deny"
	ActionAskInfo = "lethe.ask_info"
	// BlockDecide is the block holding the decision buttons.
	BlockDecide = "lethe.decide"
	// CallbackDeny and CallbackAskInfo are the modals' callback IDs; their private metadata is
	// the request ID.
	CallbackDeny    = "lethe.deny"
	CallbackAskInfo = "lethe.ask_info"
	// BlockText and ActionText are the modals' one text input.
	BlockText  = "lethe.text"
	ActionText = "text"
)

// MaxSectionText is Slack's limit on a section's text.
const MaxSectionText = 3000

// Approval is what an approval message shows: what staff need to decide, and no more
// personal data than a masked email and the customer number.
type Approval struct {
	RequestID string
	Type      string
	DueDate   string // YYYY-MM-DD, "" before the clock starts
	DaysLeft  int
	// Verified says whether the subject's identity is proven, Method how.
	Verified bool
	Method   string
	// Preflight is the erasure block check before approval; nil when none ran.
	Preflight  *Preflight
	Connectors []string
	// MaskedEmail is the subject's email as Mask gives it; CustomerID their customer number.
	MaskedEmail string
	CustomerID  string
	// Decision is set once someone decided; the message then has no buttons.
	Decision *Decision
}

// Preflight is what the block check said before anyone decided.
type Preflight struct {
	Blocked bool
	Reasons []string
	// Error is set when the check itself failed.
	Error string
}

// Decision is who decided what, and when.
type Decision struct {
	Outcome string // approved, denied
	Actor   string // "slack:U…" for a Slack user, else the actor as recorded
	At      time.Time
}

// Mask shows an email address as h***@example.com: enough for staff to recognise a subject
// they are talking to, not enough to read the address off a channel.
func Mask(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		return "***"
	}
	r, _ := utf8.DecodeRuneInString(local)
	return string(r) + "***@" + domain
}

// ApprovalBlocks is the approval message of one request.
func ApprovalBlocks(a Approval) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain(clip(fmt.Sprintf("%s request awaits approval", titleCase(a.Type)), 150))),
		slack.NewSectionBlock(nil, fields(a), nil, slack.SectionBlockOptionBlockID("lethe.facts")),
	}
	if a.Preflight != nil {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clip(preflightText(*a.Preflight), MaxSectionText)), nil, nil, slack.SectionBlockOptionBlockID("lethe.preflight")))
	}
	conns := "none"
	if len(a.Connectors) > 0 {
		conns = strings.Join(a.Connectors, ", ")
	}
	blocks = append(blocks,
		slack.NewSectionBlock(mrkdwn(clip("*Connectors*\n"+conns, MaxSectionText)), nil, nil, slack.SectionBlockOptionBlockID("lethe.connectors")),
		slack.NewContextBlock("lethe.request", mrkdwn("Request `"+a.RequestID+"`")),
	)
	if a.Decision != nil {
		return append(blocks, slack.NewSectionBlock(mrkdwn(DecisionText(*a.Decision)), nil, nil, slack.SectionBlockOptionBlockID("lethe.decision")))
	}
	return append(blocks, slack.NewActionBlock(BlockDecide,
		slack.NewButtonBlockElement(ActionApprove, a.RequestID, plain("Approve")).WithStyle(slack.StylePrimary),
		slack.NewButtonBlockElement(ActionDeny, a.RequestID, plain("Deny")).WithStyle(slack.StyleDanger),
		slack.NewButtonBlockElement(ActionAskInfo, a.RequestID, plain("Ask for information")),
	))
}

// ApprovalText is the message's fallback text (notifications, screen readers).
func ApprovalText(a Approval) string {
	if a.Decision != nil {
		return fmt.Sprintf("%s request %s: %s", titleCase(a.Type), a.RequestID, a.Decision.Outcome)
	}
	return fmt.Sprintf("%s request %s awaits approval", titleCase(a.Type), a.RequestID)
}

// DecisionText says who decided and when, naming a Slack user so Slack shows their name.
func DecisionText(d Decision) string {
	icon := map[string]string{"approved": ":white_check_mark:", "denied": ":no_entry_sign:"}[d.Outcome]
	return fmt.Sprintf("%s *%s* by %s at %s", cmp.Or(icon, ":heavy_minus_sign:"), titleCase(d.Outcome), Who(d.Actor), d.At.UTC().Format("2006-01-02 15:04 UTC"))
}

// Who is an actor as Slack should show it.
func Who(actor string) string {
	if id, ok := strings.CutPrefix(actor, "slack:"); ok {
		return "<@" + id + ">"
	}
	return actor
}

// Actor is the audit trail's actor of a Slack user.
func Actor(userID string) string { return "slack:" + userID }

// TextModal is the modal of the Deny (callback CallbackDeny) or Ask for information
// (CallbackAskInfo) button: one text field, whose text is sent to the subject.
func TextModal(callbackID, requestID string) slack.ModalViewRequest {
	title, label, submit := "Deny request", "Reason, sent to the subject", "Deny"
	if callbackID == CallbackAskInfo {
		title, label, submit = "Ask for information", "Question, emailed to the subject", "Send"
	}
	input := slack.NewPlainTextInputBlockElement(plain("Write it for the subject to read"), ActionText)
	input.Multiline = true
	input.MaxLength = MaxSectionText
	return slack.ModalViewRequest{
		Type: slack.VTModal, Title: plain(title), Submit: plain(submit), Close: plain("Cancel"),
		CallbackID: callbackID, PrivateMetadata: requestID,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewContextBlock("lethe.request", mrkdwn("Request `"+requestID+"`")),
			slack.NewInputBlock(BlockText, plain(label), nil, input),
		}},
	}
}

func fields(a Approval) []*slack.TextBlockObject {
	due := "clock not started"
	if a.DueDate != "" {
		due = fmt.Sprintf("%s (%s)", a.DueDate, daysLeft(a.DaysLeft))
	}
	verified := "not verified"
	if a.Verified {
		verified = "verified (" + a.Method + ")"
	}
	out := []*slack.TextBlockObject{
		mrkdwn("*Type*\n" + a.Type),
		mrkdwn("*Due*\n" + due),
		mrkdwn("*Identity*\n" + verified),
	}
	if a.MaskedEmail != "" {
		out = append(out, mrkdwn("*Email*\n"+a.MaskedEmail))
	}
	if a.CustomerID != "" {
		out = append(out, mrkdwn("*Customer number*\n"+clip(a.CustomerID, 100)))
	}
	return out
}

func preflightText(p Preflight) string {
	switch {
	case p.Error != "":
		return "*Preflight*\n:warning: the block check failed: " + p.Error
	case p.Blocked:
		return "*Preflight*\n:no_entry: blocked: " + strings.Join(p.Reasons, "; ")
	}
	return "*Preflight*\nnothing blocks the erasure"
}

func daysLeft(n int) string {
	switch {
	case n == -1:
		return "1 day overdue"
	case n < 0:
		return fmt.Sprintf("%d days overdue", -n)
	case n == 1:
		return "1 day left"
	}
	return fmt.Sprintf("%d days left", n)
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// clip keeps s within n characters.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// NewClient is the Web API client of one workspace's bot token; apiURL "" is Slack itself.
func NewClient(token, apiURL string) *slack.Client {
	if apiURL == "" {
		return slack.New(token)
	}
	return slack.New(token, slack.OptionAPIURL(strings.TrimSuffix(apiURL, "/")+"/"))
}
