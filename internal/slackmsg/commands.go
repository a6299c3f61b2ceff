package slackmsg

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// The breach modal of /privacy breach: its private metadata is Breach.Metadata.
const (
	CallbackBreach    = "lethe.breach"
	BlockBreachTitle  = "lethe.breach.title"
	BlockBreachAware  = "lethe.breach.aware"
	ActionBreachTitle = "title"
	ActionBreachAware = "aware_at"
)

// Status is what /privacy status shows of one request: no identifier but masked ones.
type Status struct {
	RequestID string
	Type      string
	Status    string
	DueDate   string // "" before the clock starts
	DaysLeft  int
	// MaskedEmail is the subject's email as Mask gives it; CustomerID their customer number.
	MaskedEmail string
	CustomerID  string
}

// Ephemeral is a slash command's answer that only the user who typed it sees.
func Ephemeral(text string, blocks []slack.Block) map[string]any {
	return map[string]any{"response_type": slack.ResponseTypeEphemeral, "text": text, "blocks": blocks}
}

// DaysLeft is how many days are left from now until due (YYYY-MM-DD), negative when overdue;
// false when due is not a date.
func DaysLeft(due string, now time.Time) (int, bool) {
	d, err := time.Parse(time.DateOnly, due)
	if err != nil {
		return 0, false
	}
	today, _ := time.Parse(time.DateOnly, now.UTC().Format(time.DateOnly))
	return int(d.Sub(today).Hours() / 24), true
}

// StatusBlocks is the answer to /privacy status ID.
func StatusBlocks(s Status) []slack.Block {
	a := Approval{Type: s.Type, DueDate: s.DueDate, DaysLeft: s.DaysLeft, MaskedEmail: s.MaskedEmail, CustomerID: s.CustomerID}
	facts := fields(a)
	// The approval message's identity field is not known here; status takes its place.
	facts[2] = mrkdwn("*Status*\n" + strings.ReplaceAll(s.Status, "_", " "))
	return []slack.Block{
		slack.NewSectionBlock(mrkdwn(clip("Request `"+s.RequestID+"`", MaxSectionText)), facts, nil, slack.SectionBlockOptionBlockID("lethe.status")),
	}
}

// DueBlocks is the answer to /privacy due: the requests due by until, soonest first, as many
// as one section holds.
func DueBlocks(due []DueRequest, until string) []slack.Block {
	head := "*Requests due by " + until + "*"
	if len(due) == 0 {
		return []slack.Block{slack.NewSectionBlock(mrkdwn(head+"\nnone"), nil, nil, slack.SectionBlockOptionBlockID("lethe.due"))}
	}
	text := head
	for i, d := range due {
		line := fmt.Sprintf("\n• `%s` %s: due %s (%s)", d.ID, d.Type, d.DueDate, daysLeft(d.DaysLeft))
		more := fmt.Sprintf("\n… and %d more", len(due)-i)
		if len([]rune(text+line+more)) > MaxSectionText {
			text += more
			break
		}
		text += line
	}
	return []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID("lethe.due"))}
}

// HelpText is the answer to /privacy help and to what it does not know.
const HelpText = "*/privacy* answers only you:\n" +
	"• `/privacy status ID`: a request's status, due date and days left\n" +
	"• `/privacy due`: requests due this week, with days left\n" +
	"• `/privacy breach`: report a personal-data breach; its clocks start from when you became aware\n" +
	"• `/privacy help`: this list"

// NoticeBlocks is a short answer in one section.
func NoticeBlocks(text string) []slack.Block {
	return []slack.Block{slack.NewSectionBlock(mrkdwn(clip(text, MaxSectionText)), nil, nil, slack.SectionBlockOptionBlockID("lethe.notice"))}
}

// BreachModal is the modal of /privacy breach: a title and the time of awareness (now unless
// changed). metadata comes back with the submission.
func BreachModal(metadata string, now time.Time) slack.ModalViewRequest {
	title := slack.NewPlainTextInputBlockElement(plain("What happened, in a line"), ActionBreachTitle)
	title.MaxLength = 200
	aware := slack.NewDateTimePickerBlockElement(ActionBreachAware)
	aware.InitialDateTime = now.Unix()
	return slack.ModalViewRequest{
		Type: slack.VTModal, Title: plain("Report a breach"), Submit: plain("Open breach"), Close: plain("Cancel"),
		CallbackID: CallbackBreach, PrivateMetadata: metadata,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewContextBlock("lethe.breach.why", mrkdwn("The notification clocks (such as GDPR's 72 hours) count from when you became aware.")),
			slack.NewInputBlock(BlockBreachTitle, plain("Title"), nil, title),
			slack.NewInputBlock(BlockBreachAware, plain("Became aware at"), nil, aware),
		}},
	}
}
