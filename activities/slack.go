package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/slack-go/slack"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/store"
)

// ApprovalMessage is a request's approval message in its tenant's Slack channel: what it shows
// (the subject's masked email and customer number are read here, never carried in history).
type ApprovalMessage struct {
	RequestID  string
	TenantID   string
	Type       string
	DueDate    string
	Verified   bool
	Method     string
	Preflight  *slackmsg.Preflight
	Connectors []string
	// Decision is set once the request is decided; the message then shows who and when.
	Decision *slackmsg.Decision
}

// PostApprovalMessage posts the request's approval message, or updates it in place when one was
// posted already (slack_messages): a retried activity, and the decision that follows, never
// post a second message. A tenant without Slack settings has nothing to post.
func (a *Activities) PostApprovalMessage(ctx context.Context, m ApprovalMessage) error {
	s := a.Tenants[m.TenantID].Slack
	if s == nil {
		return nil
	}
	msg, err := a.approval(ctx, m)
	if err != nil {
		return err
	}
	client := slackmsg.NewClient(s.BotToken.Value(), a.SlackAPI)
	opts := []slack.MsgOption{slack.MsgOptionText(slackmsg.ApprovalText(msg), false), slack.MsgOptionBlocks(slackmsg.ApprovalBlocks(msg)...)}
	posted, err := a.Store.SlackMessages().Get(ctx, m.RequestID)
	switch {
	case err == nil:
		if _, _, _, err := client.UpdateMessageContext(ctx, posted.Channel, posted.TS, opts...); err != nil {
			return slackError("updating the approval message of request "+m.RequestID, err)
		}
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	channel, ts, err := client.PostMessageContext(ctx, s.ApprovalChannel, opts...)
	if err != nil {
		return slackError("posting the approval message of request "+m.RequestID, err)
	}
	return a.Store.SlackMessages().Save(ctx, store.SlackMessage{RequestID: m.RequestID, TenantID: m.TenantID, Channel: channel, TS: ts, PostedAt: a.now()})
}

// approval is what the message shows, the subject's identifiers masked.
func (a *Activities) approval(ctx context.Context, m ApprovalMessage) (slackmsg.Approval, error) {
	out := slackmsg.Approval{
		RequestID: m.RequestID, Type: m.Type, DueDate: m.DueDate, Verified: m.Verified, Method: m.Method,
		Preflight: m.Preflight, Connectors: m.Connectors, Decision: m.Decision,
	}
	out.DaysLeft = a.daysLeft(m.DueDate)
	ids, _, err := a.Store.Subjects().Given(ctx, m.TenantID, m.RequestID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return out, err
	}
	if ids.Email != "" {
		out.MaskedEmail = slackmsg.Mask(ids.Email)
	}
	out.CustomerID = ids.CustomerID
	return out, nil
}

// daysLeft is the whole days from today (UTC) to a due date (YYYY-MM-DD); 0 when unknown.
func (a *Activities) daysLeft(dueDate string) int {
	n, _ := slackmsg.DaysLeft(dueDate, a.now())
	return n
}

// slackError sorts a failed Web API call: throttled (retry when Slack said, as Retry-After),
// refused for good (bad token, unknown channel), or transient.
func slackError(doing string, err error) error {
	var limited *slack.RateLimitedError
	if errors.As(err, &limited) {
		return temporal.NewApplicationErrorWithOptions(doing+": throttled by Slack", "throttled",
			temporal.ApplicationErrorOptions{NextRetryDelay: limited.RetryAfter, Cause: err})
	}
	var refused slack.SlackErrorResponse
	if errors.As(err, &refused) && permanentSlackErrors[refused.Err] {
		return permanent(fmt.Sprintf("%s: Slack refused it: %s", doing, refused.Err), err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// permanentSlackErrors are the Web API errors no retry cures: the settings must change.
var permanentSlackErrors = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "missing_scope": true,
	"invalid_blocks": true, "msg_too_long": true,
}

// alsoSlack posts a reminder's alert to the tenant's Slack after its email was sent or failed
// (mailed), so that neither channel waits on the other: Slack down still mails, and a mailbox
// refused for good still posts. The email's failure, if any, is the activity's.
func (a *Activities) alsoSlack(ctx context.Context, mailed error, tenantID, key string, alert func(context.Context) (slackmsg.Alert, error)) error {
	if a.Tenants[tenantID].Slack == nil {
		return mailed
	}
	al, err := alert(ctx)
	if err == nil {
		err = a.postAlert(ctx, tenantID, key, true, slackmsg.AlertText(al), slackmsg.AlertBlocks(al))
	}
	if mailed != nil {
		if err != nil {
			activity.GetLogger(ctx).Error("posting to Slack failed too", "key", key, "err", err)
		}
		return mailed
	}
	return err
}

// postAlert posts an alert to the tenant's channel and, with toDPO when a DPO user is set, to
// the DPO directly, each once per key (slack_alerts): a retried activity does not post again. A
// tenant without Slack settings has nothing to post.
func (a *Activities) postAlert(ctx context.Context, tenantID, key string, toDPO bool, text string, blocks []slack.Block) error {
	s := a.Tenants[tenantID].Slack
	if s == nil {
		return nil
	}
	to := map[string]string{key + ":slack:channel": s.ApprovalChannel}
	if toDPO && s.DPOUser != "" {
		to[key+":slack:dpo"] = s.DPOUser
	}
	client := slackmsg.NewClient(s.BotToken.Value(), a.SlackAPI)
	for _, k := range slices.Sorted(maps.Keys(to)) {
		posted, err := a.Store.SlackAlerts().Posted(ctx, k)
		if err != nil {
			return err
		}
		if posted {
			continue
		}
		// A user ID as the channel is a direct message from the app.
		channel, ts, err := client.PostMessageContext(ctx, to[k], slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		if err != nil {
			return slackError("posting "+k, err)
		}
		if err := a.Store.SlackAlerts().Save(ctx, k, tenantID, store.SlackMessage{Channel: channel, TS: ts, PostedAt: a.now()}); err != nil {
			return err
		}
	}
	return nil
}
