// Package slackapp is Lethe's Slack app over HTTP: Slack's interactions (button clicks and modal
// submissions on approval messages) at /slack/interactions, each checked against the signing
// secret of a tenant and decided through the request service like every other surface. A new
// Slack endpoint is one more route in Mount; /slack/commands answers the /privacy command.
package slackapp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// MaxBody bounds a request from Slack; an interaction payload is a few kilobytes.
const MaxBody = 256 << 10

// Options are what the Slack app needs from the stack.
type Options struct {
	Requests *requests.Service
	// Breaches opens breaches reported with /privacy breach; nil answers that it is not set up.
	Breaches *breaches.Service
	Store    *store.Store
	Tenants  []config.Tenant
	// APIURL is Slack's Web API base ("" for Slack itself).
	APIURL string
	Log    *slog.Logger
	// Now is the clock of due dates and times of awareness (nil: time.Now).
	Now func() time.Time
}

// App answers Slack's requests.
type App struct{ o Options }

// Mount serves the Slack endpoints on mux when some tenant has Slack settings.
func Mount(mux *http.ServeMux, o Options) {
	if !slices.ContainsFunc(o.Tenants, func(t config.Tenant) bool { return t.Slack != nil }) {
		return
	}
	a := &App{o: o}
	mux.HandleFunc("POST /slack/interactions", a.interactions)
	mux.HandleFunc("POST /slack/commands", a.commands)
}

// verified reads the body once, within MaxBody, and returns it with the tenants whose signing
// secret signed it; Slack's signature covers "v0:timestamp:body" and a timestamp more than
// five minutes off is refused (slack.NewSecretsVerifier).
func (a *App) verified(w http.ResponseWriter, r *http.Request) ([]byte, []config.Tenant, int) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		return nil, nil, http.StatusRequestEntityTooLarge
	}
	var signed []config.Tenant
	for _, t := range a.o.Tenants {
		if t.Slack == nil {
			continue
		}
		sv, err := slack.NewSecretsVerifier(r.Header, t.Slack.SigningSecret.Value())
		if err != nil {
			continue // no signature, or a stale or malformed timestamp
		}
		if _, err := sv.Write(body); err == nil && sv.Ensure() == nil {
			signed = append(signed, t)
		}
	}
	if len(signed) == 0 {
		return nil, nil, http.StatusUnauthorized
	}
	return body, signed, 0
}

// signedForm is a verified request's form and the tenants that signed it; false when it
// answered the request already (401, 413, 400).
func (a *App) signedForm(w http.ResponseWriter, r *http.Request) (url.Values, []config.Tenant, bool) {
	body, tenants, status := a.verified(w, r)
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return nil, nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "the body is not a form", http.StatusBadRequest)
		return nil, nil, false
	}
	return form, tenants, true
}

func (a *App) interactions(w http.ResponseWriter, r *http.Request) {
	form, tenants, ok := a.signedForm(w, r)
	if !ok {
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "the payload is not an interaction", http.StatusBadRequest)
		return
	}
	if resp := a.Interact(r.Context(), tenants, cb); resp != nil {
		writeJSON(w, resp)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Interact handles one interaction from tenants' Slack, over HTTP or Socket Mode alike; it
// returns the response payload to send back, or nil for an empty acknowledgement.
func (a *App) Interact(ctx context.Context, tenants []config.Tenant, cb slack.InteractionCallback) map[string]any {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		a.clicked(ctx, tenants, cb)
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID == slackmsg.CallbackBreach {
			if errs := a.breachSubmitted(ctx, tenants, cb); errs != nil {
				return map[string]any{"response_action": "errors", "errors": errs}
			}
			return nil
		}
		if msg := a.submitted(ctx, tenants, cb); msg != "" {
			// Slack shows the error under the modal's text field; the modal stays open.
			return map[string]any{"response_action": "errors", "errors": map[string]string{slackmsg.BlockText: msg}}
		}
	}
	return nil // a click, a submission accepted, or nothing Lethe asked for
}

// decider is the Slack user acting on one request of one tenant.
type decider struct {
	tenant  config.Tenant
	request string
	typ     string
	user    string
	channel string
	client  *slack.Client
}

// clicked handles a button of an approval message.
func (a *App) clicked(ctx context.Context, tenants []config.Tenant, cb slack.InteractionCallback) {
	if len(cb.ActionCallback.BlockActions) == 0 {
		return
	}
	act := cb.ActionCallback.BlockActions[0]
	d, ok := a.decider(ctx, tenants, act.Value, cb.User.ID, cb.Channel.ID)
	if !ok {
		return
	}
	if !a.allowed(ctx, d, act.ActionID) {
		return
	}
	switch act.ActionID {
	case slackmsg.ActionApprove:
		if msg := a.decide(ctx, d, workflows.UpdateApprove, ""); msg != "" {
			a.tell(ctx, d, msg)
		}
	case slackmsg.ActionDeny, slackmsg.ActionAskInfo:
		callback := map[string]string{slackmsg.ActionDeny: slackmsg.CallbackDeny, slackmsg.ActionAskInfo: slackmsg.CallbackAskInfo}[act.ActionID]
		if _, err := d.client.OpenViewContext(ctx, cb.TriggerID, slackmsg.TextModal(callback, d.request)); err != nil {
			a.o.Log.Warn("opening a Slack modal failed", "request_id", d.request, "error", err)
		}
	}
}

// submitted handles a modal's text; it returns the error to show in the modal, or "".
func (a *App) submitted(ctx context.Context, tenants []config.Tenant, cb slack.InteractionCallback) string {
	update := map[string]string{slackmsg.CallbackDeny: workflows.UpdateDeny, slackmsg.CallbackAskInfo: workflows.UpdateAskInfo}[cb.View.CallbackID]
	if update == "" {
		return ""
	}
	var text string
	if cb.View.State != nil {
		text = strings.TrimSpace(cb.View.State.Values[slackmsg.BlockText][slackmsg.ActionText].Value)
	}
	if text == "" {
		return "Write the text the subject will read."
	}
	d, ok := a.decider(ctx, tenants, cb.View.PrivateMetadata, cb.User.ID, "")
	if !ok {
		return "Lethe does not know this request."
	}
	if !a.allowed(ctx, d, cb.View.CallbackID) {
		return "You may not decide this request."
	}
	return a.decide(ctx, d, update, text)
}

// decider finds the request among the tenants that signed the call.
func (a *App) decider(ctx context.Context, tenants []config.Tenant, requestID, user, channel string) (decider, bool) {
	for _, t := range tenants {
		st, err := a.o.Requests.Get(ctx, t.ID, requestID)
		if err != nil {
			continue
		}
		return decider{tenant: t, request: requestID, typ: st.Type, user: user,
			channel: cmp.Or(channel, t.Slack.ApprovalChannel), client: slackmsg.NewClient(t.Slack.BotToken.Value(), a.o.APIURL)}, true
	}
	a.o.Log.Warn("a Slack interaction names a request none of its tenants has", "request_id", requestID)
	return decider{}, false
}

// allowed says whether the user may decide the request; a refusal is audited and the user
// told, in a message only they see.
func (a *App) allowed(ctx context.Context, d decider, action string) bool {
	users, groups := d.tenant.Slack.ApproversOf(d.typ)
	if slices.Contains(users, d.user) {
		return true
	}
	for _, g := range groups {
		members, err := d.client.GetUserGroupMembersContext(ctx, g)
		if err != nil {
			a.o.Log.Warn("reading a Slack user group failed", "group", g, "error", err)
			continue
		}
		if slices.Contains(members, d.user) {
			return true
		}
	}
	_, err := a.o.Store.Audit().Append(ctx, a.o.Store.Pool, store.Event{
		TenantID: d.tenant.ID, Actor: slackmsg.Actor(d.user), Action: "slack.decision_refused", RequestID: d.request,
		Detail: map[string]any{"action": action, "why": "not an approver of " + d.typ + " requests"},
	})
	if err != nil {
		a.o.Log.Error("auditing a refused Slack decision failed", "request_id", d.request, "error", err)
	}
	a.tell(ctx, d, fmt.Sprintf("You are not an approver of %s requests, so nothing was decided. Ask your privacy team to add you.", d.typ))
	return false
}

// decide sends the decision as the Slack user; it returns why it was refused, or "".
func (a *App) decide(ctx context.Context, d decider, update, text string) string {
	_, err := a.o.Requests.Decide(ctx, d.tenant.ID, d.request, update, workflows.Decision{Actor: slackmsg.Actor(d.user), Reason: text})
	switch {
	case err == nil:
		return ""
	case errors.Is(err, requests.ErrRejected):
		return "Nothing was decided: " + strings.TrimPrefix(err.Error(), requests.ErrRejected.Error()+": ") + "."
	}
	a.o.Log.Error("a decision from Slack failed", "request_id", d.request, "update", update, "error", err)
	return "Lethe could not record the decision; try again in a moment."
}

// tell shows the user a message only they see, in the approval channel.
func (a *App) tell(ctx context.Context, d decider, text string) {
	if _, err := d.client.PostEphemeralContext(ctx, d.channel, d.user, slack.MsgOptionText(text, false)); err != nil {
		a.o.Log.Warn("telling a Slack user failed", "request_id", d.request, "error", err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
