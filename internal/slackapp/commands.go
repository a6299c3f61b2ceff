package slackapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/store"
)

// commands answers /privacy, only to the user who typed it, for the tenants whose signing
// secret signed the command.
func (a *App) commands(w http.ResponseWriter, r *http.Request) {
	form, tenants, ok := a.signedForm(w, r)
	if !ok {
		return
	}
	answer := a.Command(r.Context(), tenants, slack.SlashCommand{
		Text: form.Get("text"), TriggerID: form.Get("trigger_id"), ChannelID: form.Get("channel_id"), UserID: form.Get("user_id"),
	})
	if answer == nil {
		w.WriteHeader(http.StatusOK) // the modal is the answer
		return
	}
	writeJSON(w, answer)
}

// Command answers one /privacy command for tenants, over HTTP or Socket Mode alike: an
// ephemeral message, or nil when a modal opened instead.
func (a *App) Command(ctx context.Context, tenants []config.Tenant, cmd slack.SlashCommand) map[string]any {
	verb, arg, _ := strings.Cut(strings.TrimSpace(cmd.Text), " ")
	var text string
	var blocks []slack.Block
	switch strings.ToLower(verb) {
	case "status":
		text, blocks = a.status(ctx, tenants, strings.TrimSpace(arg))
	case "due":
		text, blocks = a.due(ctx, tenants)
	case "breach":
		if text = a.breachForm(ctx, tenants, cmd.TriggerID, cmd.ChannelID); text == "" {
			return nil
		}
		blocks = slackmsg.NoticeBlocks(text)
	default:
		text, blocks = "/privacy help", slackmsg.NoticeBlocks(slackmsg.HelpText)
	}
	return slackmsg.Ephemeral(text, blocks)
}

func (a *App) status(ctx context.Context, tenants []config.Tenant, id string) (string, []slack.Block) {
	if id == "" {
		return "usage", slackmsg.NoticeBlocks("Which request? `/privacy status ID`, such as `/privacy status R-7K3QF2M9XA`.")
	}
	for _, t := range tenants {
		st, err := a.o.Requests.Get(ctx, t.ID, id)
		if errors.Is(err, requests.ErrNotFound) {
			continue
		}
		if err != nil {
			a.o.Log.Error("reading a request for /privacy status failed", "request_id", id, "error", err)
			return "error", slackmsg.NoticeBlocks("Lethe could not read the request; try again in a moment.")
		}
		s := slackmsg.Status{RequestID: st.RequestID, Type: st.Type, Status: st.Status, DueDate: st.DueDate}
		s.DaysLeft, _ = slackmsg.DaysLeft(st.DueDate, a.now())
		ids, _, err := a.o.Store.Subjects().Given(ctx, t.ID, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			a.o.Log.Error("reading a request's subject for /privacy status failed", "request_id", id, "error", err)
		}
		if ids.Email != "" {
			s.MaskedEmail = slackmsg.Mask(ids.Email)
		}
		s.CustomerID = ids.CustomerID
		return fmt.Sprintf("Request %s: %s", st.RequestID, st.Status), slackmsg.StatusBlocks(s)
	}
	if !requestID.MatchString(id) {
		return "not found", slackmsg.NoticeBlocks("No such request here.") // not echoed: it may be anything typed
	}
	return "not found", slackmsg.NoticeBlocks(fmt.Sprintf("No request `%s` here.", id))
}

// dueWithin is what "this week" means for /privacy due: due in the next seven days, or overdue.
const dueWithin = 7

func (a *App) due(ctx context.Context, tenants []config.Tenant) (string, []slack.Block) {
	now := a.now()
	until := now.UTC().AddDate(0, 0, dueWithin).Format(time.DateOnly)
	before := now.UTC().AddDate(0, 0, dueWithin+1).Format(time.DateOnly)
	var due []slackmsg.DueRequest
	for _, t := range tenants {
		rows, err := a.o.Requests.List(ctx, t.ID, requests.Filter{DueBefore: before, Limit: 1000})
		if err != nil {
			a.o.Log.Error("listing requests for /privacy due failed", "tenant", t.ID, "error", err)
			return "error", slackmsg.NoticeBlocks("Lethe could not list the requests; try again in a moment.")
		}
		for _, r := range rows {
			if domain.Terminal(r.Status) || r.DueDate == "" {
				continue
			}
			d := slackmsg.DueRequest{ID: r.ID, Type: r.Type, DueDate: r.DueDate}
			d.DaysLeft, _ = slackmsg.DaysLeft(r.DueDate, now)
			due = append(due, d)
		}
	}
	return fmt.Sprintf("%d requests due by %s", len(due), until), slackmsg.DueBlocks(due, until)
}

// breachForm opens the breach modal; it returns what to tell the user when it cannot, or "".
// The modal names the tenant (the first that signed) and the channel to answer in.
func (a *App) breachForm(ctx context.Context, tenants []config.Tenant, trigger, channel string) string {
	if a.o.Breaches == nil {
		return "Breach reporting is not set up in this Lethe."
	}
	t := tenants[0]
	client := slackmsg.NewClient(t.Slack.BotToken.Value(), a.o.APIURL)
	if _, err := client.OpenViewContext(ctx, trigger, slackmsg.BreachModal(t.ID+" "+channel, a.now())); err != nil {
		a.o.Log.Warn("opening the Slack breach modal failed", "tenant", t.ID, "error", err)
		return "Lethe could not open the breach form; try again."
	}
	return ""
}

// breachSubmitted opens the breach of a submitted breach modal as the Slack user; it returns
// the errors to show in the modal by block, or nil.
func (a *App) breachSubmitted(ctx context.Context, tenants []config.Tenant, cb slack.InteractionCallback) map[string]string {
	tenantID, channel, _ := strings.Cut(cb.View.PrivateMetadata, " ")
	var t config.Tenant
	for _, s := range tenants {
		if s.ID == tenantID {
			t = s
		}
	}
	if t.ID == "" || a.o.Breaches == nil {
		// Another workspace's modal, or one forged: nothing opens.
		return map[string]string{slackmsg.BlockBreachTitle: "Lethe cannot open a breach from this form."}
	}
	var title string
	var aware int64
	if cb.View.State != nil {
		v := cb.View.State.Values
		title = strings.TrimSpace(v[slackmsg.BlockBreachTitle][slackmsg.ActionBreachTitle].Value)
		aware = v[slackmsg.BlockBreachAware][slackmsg.ActionBreachAware].SelectedDateTime
	}
	if title == "" {
		return map[string]string{slackmsg.BlockBreachTitle: "Say what happened, in a line."}
	}
	if aware == 0 {
		return map[string]string{slackmsg.BlockBreachAware: "When did you become aware of it?"}
	}
	awareAt := time.Unix(aware, 0).UTC()
	id, err := a.o.Breaches.Open(ctx, breaches.Opening{TenantID: t.ID, Title: title, AwareAt: awareAt, OpenedBy: slackmsg.Actor(cb.User.ID)})
	switch {
	case errors.Is(err, breaches.ErrInvalid):
		block := slackmsg.BlockBreachTitle
		if strings.Contains(err.Error(), "aware_at") {
			block = slackmsg.BlockBreachAware
		}
		return map[string]string{block: strings.TrimPrefix(err.Error(), breaches.ErrInvalid.Error()+": ")}
	case err != nil:
		a.o.Log.Error("opening a breach from Slack failed", "tenant", t.ID, "error", err)
		return map[string]string{slackmsg.BlockBreachTitle: "Lethe could not open the breach; try again in a moment."}
	}
	if channel != "" {
		d := decider{tenant: t, user: cb.User.ID, channel: channel, client: slackmsg.NewClient(t.Slack.BotToken.Value(), a.o.APIURL)}
		a.tell(ctx, d, fmt.Sprintf("Breach %s is open; its clocks count from %s.", id, awareAt.Format("2006-01-02 15:04 UTC")))
	}
	return nil
}

func (a *App) now() time.Time {
	if a.o.Now != nil {
		return a.o.Now()
	}
	return time.Now()
}

var requestID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
