package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/store"
)

// MaxText is Twilio's limit on a text's body, in characters.
const MaxText = 1600

// twilioQueueFull is Twilio's 21611: the sender has more queued than it sends in 10 hours. It
// is a 400 the connector calls permanent, but for a notice it only means later.
const (
	twilioQueueFull  = 21611
	queueFullBackoff = 10 * time.Minute
)

// NoticeTexts asks SendNoticeTexts for text batch number Batch of a breach's notice: up to Size
// people known only by a phone, one text each (Twilio has no batch send).
type NoticeTexts struct {
	BreachID string
	TenantID string
	Run      int
	Batch    int // 1, 2, ...: numbered by the workflow, so a retry is the same batch
	Size     int
	Content  NoticeContent
}

// TextsOutcome is what became of one text batch. Done means nobody was left to claim.
type TextsOutcome struct {
	Batch      int  `json:"batch"`
	Recipients int  `json:"recipients"`
	Sent       int  `json:"sent"`
	Failed     int  `json:"failed"`
	Resolved   int  `json:"resolved,omitempty"` // unanswered sends found at Twilio, not sent again
	Done       bool `json:"done"`
}

// NoticeTextBody is the text a breach's notice is sent as to people known only by a phone: the
// email notice's own wording (template breach_notification) in its short form, within Twilio's
// 1,600 characters, the contact point and the reference kept whole. It is the same for everyone
// of the breach and for every attempt, which is what lets an unanswered send be found at Twilio
// by its body.
func NoticeTextBody(tenant mail.Branding, breachID string, c NoticeContent) (string, error) {
	return mail.RenderShort(mail.Notice{Kind: mail.KindBreachNotification, Tenant: tenant, Data: map[string]any{
		"Nature": c.Nature, "ContactPoint": c.ContactPoint, "Consequences": c.Consequences,
		"Measures": c.Measures, "Recommendations": c.Recommendations, "Reference": breachID,
	}}, MaxText, "ContactPoint", "Reference")
}

// SendNoticeTexts texts one batch of a breach's notice, exactly once per person:
//
//  1. The batch's people are claimed in PostgreSQL, each marked claimed, in one transaction
//     before Twilio is called; a retry finds the claim and texts the same people, never others.
//  2. Each text is one Twilio call, and its outcome is recorded for that person as soon as
//     Twilio answers: sent with the SID, or failed for good with Twilio's code (21211 not a
//     valid number, 21610 replied STOP), which does not stop the others. A 429 sent nothing:
//     the person is marked refused and the batch is retried after Twilio's Retry-After.
//  3. A person claimed by an earlier attempt with no outcome is in doubt (the worker died, or
//     the answer was lost, mid-call). Twilio takes no idempotency key, so the retry asks Twilio
//     for a text with exactly this body from the tenant's sender to that phone, and records it
//     sent if there is one; only if there is none is it sent.
//
// A retry comes after the heartbeat timeout (longer than the sms connector's HTTP timeout), so
// a call the dead attempt made has been answered at Twilio by then.
func (a *Activities) SendNoticeTexts(ctx context.Context, nt NoticeTexts) (TextsOutcome, error) {
	out := TextsOutcome{Batch: nt.Batch}
	n := a.Store.Notices()
	if !a.texting(nt.TenantID) {
		// Nobody is listed to be texted unless the tenant sends texts.
		left, err := n.TextsLeft(ctx, nt.BreachID)
		if err != nil || left == 0 {
			out.Done = true
			return out, err
		}
		return out, permanent("texting the notice of breach "+nt.BreachID, fmt.Errorf("%d people are to be told by text and the worker sends no texts for tenant %s: set tenants[].sms", left, nt.TenantID))
	}
	body, err := NoticeTextBody(a.branding(nt.TenantID), nt.BreachID, nt.Content)
	if err != nil {
		return out, permanent("writing the text of the notice of breach "+nt.BreachID, err)
	}
	if body, err = n.TextBody(ctx, nt.BreachID, nt.Run, body); err != nil {
		return out, err
	}
	ts, err := n.Texts(ctx, nt.BreachID, nt.Run, nt.Batch)
	if err != nil {
		return out, err
	}
	fresh := len(ts) == 0 // claimed by this attempt: nothing of it can have been sent yet
	if fresh {
		if ts, err = n.ClaimTexts(ctx, nt.BreachID, nt.Run, nt.Batch, max(nt.Size, 1), a.now()); err != nil {
			return out, err
		}
		if len(ts) == 0 {
			out.Done = true
			return out, nil
		}
	}
	out.Recipients = len(ts)
	for _, t := range ts {
		activity.RecordHeartbeat(ctx, t.Seq)
		switch t.Status {
		case store.BatchSent:
			out.Sent++
			continue
		case store.BatchFailed:
			out.Failed++
			continue
		case store.BatchReleased:
			continue
		case store.BatchClaimed:
			if !fresh {
				sid, found, err := a.Texts.Sent(ctx, nt.TenantID, t.Phone, body)
				if err != nil {
					return out, textError(fmt.Sprintf("looking up text %d of the notice of breach %s at Twilio", t.Seq, nt.BreachID), err)
				}
				if found {
					if err := n.SettleText(ctx, nt.BreachID, t.Seq, store.BatchSent, sid, "", a.now()); err != nil {
						return out, err
					}
					out.Sent++
					out.Resolved++
					continue
				}
			}
		}
		status, err := a.sendText(ctx, nt, t, body)
		if err != nil {
			return out, err
		}
		if status == store.BatchSent {
			out.Sent++
		} else {
			out.Failed++
		}
	}
	return out, nil
}

// sendText sends one person's text and records the outcome: sent, or failed for good (the
// person's own refusal from Twilio). Any other failure is the batch's error, to retry.
func (a *Activities) sendText(ctx context.Context, nt NoticeTexts, t store.NoticeText, body string) (string, error) {
	n := a.Store.Notices()
	key := "breach-notice:" + nt.BreachID + ":" + strconv.FormatInt(t.Seq, 10)
	var callback string
	if in := a.Tenants[nt.TenantID].SMS; a.PublicURL != "" && in != "" {
		callback = NoticeTextCallback(a.PublicURL, in, nt.BreachID, t.Seq)
	}
	sid, err := a.Texts.SendTracked(ctx, nt.TenantID, key, t.Phone, body, callback)
	var api *sms.APIError
	answered := errors.As(err, &api)
	switch {
	case err == nil:
		return store.BatchSent, n.SettleText(ctx, nt.BreachID, t.Seq, store.BatchSent, sid, "", a.now())
	case answered && api.Code == twilioQueueFull:
		// The sender's queue at Twilio holds 10 hours of texts: nothing was queued, come back later.
		if serr := n.SettleText(ctx, nt.BreachID, t.Seq, store.BatchRefused, "", api.Error(), a.now()); serr != nil {
			return "", serr
		}
		return "", temporal.NewApplicationErrorWithOptions(fmt.Sprintf("texting person %d of the notice of breach %s: the sender's queue is full", t.Seq, nt.BreachID),
			"throttled", temporal.ApplicationErrorOptions{NextRetryDelay: queueFullBackoff, Cause: err})
	case answered && connectors.IsPermanent(err):
		// This number cannot be texted (invalid, opted out, ...): the others still are.
		return store.BatchFailed, n.SettleText(ctx, nt.BreachID, t.Seq, store.BatchFailed, "", api.Error(), a.now())
	case answered && api.Status == http.StatusTooManyRequests:
		// Throttled: Twilio sent nothing, so the retry sends without asking.
		if serr := n.SettleText(ctx, nt.BreachID, t.Seq, store.BatchRefused, "", api.Error(), a.now()); serr != nil {
			return "", serr
		}
	}
	// Unanswered, or a server error that might have sent it: it stays claimed, and the retry
	// asks Twilio first.
	return "", textError(fmt.Sprintf("texting person %d of the notice of breach %s", t.Seq, nt.BreachID), err)
}

// releaseTexts settles the texts runs from..to left claimed or refused, as ReleaseNoticeBatches
// does the batches: a refused one sent nothing and is released; a claimed one is in doubt and
// is recorded sent if Twilio has it, else released. It returns the people released, and those
// found sent.
func (a *Activities) releaseTexts(ctx context.Context, r NoticeRelease) (released, sent int, err error) {
	n := a.Store.Notices()
	ts, err := n.UnsettledTexts(ctx, r.BreachID, r.FromRun, r.ToRun)
	if err != nil || len(ts) == 0 {
		return 0, 0, err
	}
	tenant, bodies, err := n.TextBodies(ctx, r.BreachID, r.FromRun, r.ToRun)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range ts {
		if body, ok := bodies[t.Run]; ok && t.Status == store.BatchClaimed {
			if a.Texts == nil {
				return released, sent, permanent("settling the texts of the notice of breach "+r.BreachID, errors.New("the worker sends no texts"))
			}
			sid, found, err := a.Texts.Sent(ctx, tenant, t.Phone, body)
			if err != nil {
				return released, sent, textError("looking up a text of the notice of breach "+r.BreachID+" at Twilio", err)
			}
			if found {
				if err := n.SettleText(ctx, r.BreachID, t.Seq, store.BatchSent, sid, "", a.now()); err != nil {
					return released, sent, err
				}
				sent++
				continue
			}
		}
		reason := "not sent: " + r.Reason
		if t.Error != "" {
			reason += " (last answer: " + t.Error + ")"
		}
		if err := n.SettleText(ctx, r.BreachID, t.Seq, store.BatchReleased, "", reason, a.now()); err != nil {
			return released, sent, err
		}
		released++
	}
	return released, sent, nil
}

// texting reports whether the people of tenant known only by a phone are texted.
func (a *Activities) texting(tenant string) bool { return a.Texts != nil && a.Texts.Enabled(tenant) }

// NoticeTextCallback is the StatusCallback of the text of recipient seq of a breach's notice,
// sent through sms connector instance: Twilio posts the text's status there (POST
// /webhooks/twilio/{instance}/status), signed over the whole URL, query included.
func NoticeTextCallback(publicURL, instance, breachID string, seq int64) string {
	return strings.TrimRight(publicURL, "/") + "/webhooks/twilio/" + url.PathEscape(instance) + "/status?" +
		url.Values{"breach": {breachID}, "seq": {strconv.FormatInt(seq, 10)}}.Encode()
}
