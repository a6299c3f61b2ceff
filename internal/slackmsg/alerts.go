package slackmsg

import (
	"fmt"
	"time"

	"github.com/slack-go/slack"
)

// Alert is a deadline reminder, an overdue escalation or a breach clock alarm as posted to the
// tenant's channel and sent to its DPO: what is due and when, never the subject.
type Alert struct {
	Title string
	Facts []string // mrkdwn "*Label*\nvalue", shown as a section's fields
	Ref   string   // the context line naming the request or breach
}

// DeadlineAlert is a request's deadline reminder (kind "reminder") or overdue escalation.
func DeadlineAlert(kind, requestID, typ, dueDate string, daysLeftN int) Alert {
	title := fmt.Sprintf("%s request due %s", titleCase(typ), dueDate)
	if kind == "overdue" {
		title = fmt.Sprintf("Overdue: %s request was due %s", typ, dueDate)
	}
	return Alert{
		Title: title,
		Facts: []string{"*Type*\n" + typ, "*Due*\n" + dueDate + " (" + daysLeft(daysLeftN) + ")"},
		Ref:   "Request `" + requestID + "`",
	}
}

// BreachAlert is a breach clock's reminder (kind "reminder") or its escalation at the limit.
func BreachAlert(kind, breachID, rule, notify string, due time.Time, hours int) Alert {
	title := "Breach clock: notify " + notify + " by " + due.UTC().Format("2006-01-02 15:04 UTC")
	if kind == "escalation" {
		title = "Escalation: breach clock past its limit, " + notify + " not notified"
	}
	return Alert{
		Title: title,
		Facts: []string{"*Rule*\n" + rule, "*Notify*\n" + notify, "*Due*\n" + due.UTC().Format("2006-01-02 15:04 UTC") + " (" + hoursLeft(hours) + ")"},
		Ref:   "Breach `" + breachID + "`",
	}
}

// AlertBlocks is an alert's message.
func AlertBlocks(a Alert) []slack.Block {
	var fs []*slack.TextBlockObject
	for _, f := range a.Facts[:min(len(a.Facts), maxFields)] {
		fs = append(fs, mrkdwn(clip(f, maxFieldText)))
	}
	return []slack.Block{
		slack.NewHeaderBlock(plain(clip(a.Title, maxHeaderText))),
		slack.NewSectionBlock(nil, fs, nil, slack.SectionBlockOptionBlockID("lethe.facts")),
		slack.NewContextBlock("lethe.ref", mrkdwn(clip(a.Ref, MaxSectionText))),
	}
}

// AlertText is the alert's fallback text.
func AlertText(a Alert) string { return a.Title }

// Digest is the daily digest of one tenant: requests due soon and open breaches' clocks.
type Digest struct {
	Date     string // YYYY-MM-DD
	Requests []DueRequest
	Breaches []OpenBreach
}

// DueRequest is a request due soon.
type DueRequest struct {
	ID, Type, DueDate string
	DaysLeft          int
}

// OpenBreach is an open breach and its nearest running clock.
type OpenBreach struct {
	ID, Rule  string
	Due       time.Time
	HoursLeft int
}

// DigestBlocks is the digest's message; a long list is cut short, saying how many are left out.
func DigestBlocks(d Digest) []slack.Block {
	var reqs, brs []string
	for _, r := range d.Requests {
		reqs = append(reqs, fmt.Sprintf("• `%s` %s, due %s (%s)", r.ID, r.Type, r.DueDate, daysLeft(r.DaysLeft)))
	}
	for _, b := range d.Breaches {
		brs = append(brs, fmt.Sprintf("• `%s` %s, due %s (%s)", b.ID, b.Rule, b.Due.UTC().Format("2006-01-02 15:04 UTC"), hoursLeft(b.HoursLeft)))
	}
	return []slack.Block{
		slack.NewHeaderBlock(plain("Privacy digest for " + d.Date)),
		slack.NewSectionBlock(mrkdwn(list(fmt.Sprintf("*Requests due within 7 days* (%d)", len(reqs)), reqs)), nil, nil, slack.SectionBlockOptionBlockID("lethe.due")),
		slack.NewSectionBlock(mrkdwn(list(fmt.Sprintf("*Open breaches* (%d)", len(brs)), brs)), nil, nil, slack.SectionBlockOptionBlockID("lethe.breaches")),
	}
}

// DigestText is the digest's fallback text.
func DigestText(d Digest) string {
	return fmt.Sprintf("Privacy digest for %s: %d requests due within 7 days, %d open breaches", d.Date, len(d.Requests), len(d.Breaches))
}

// list is a heading and its lines within a section's limit, the lines left out counted.
func list(heading string, lines []string) string {
	if len(lines) == 0 {
		return heading + "\nnone"
	}
	out := heading
	for i, l := range lines {
		more := fmt.Sprintf("\n…and %d more", len(lines)-i)
		if len([]rune(out+"\n"+l))+len(more) > MaxSectionText {
			return out + more
		}
		out += "\n" + l
	}
	return out
}

func hoursLeft(n int) string {
	switch {
	case n < 0:
		return fmt.Sprintf("%d hours past", -n)
	case n == 1:
		return "1 hour left"
	}
	return fmt.Sprintf("%d hours left", n)
}

// HoursLeft is the whole hours from now until due (negative once past).
func HoursLeft(due, now time.Time) int { return int(due.Sub(now).Hours()) }
