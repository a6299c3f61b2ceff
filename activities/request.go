package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/exportpkg"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

// ErrPermanent is the application error type of failures a retry cannot fix. Workflows list it
// in NonRetryableErrorTypes; the bridge uses it for connectors' permanent failures.
const ErrPermanent = "permanent"

func permanent(msg string, err error) error {
	return temporal.NewNonRetryableApplicationError(msg, ErrPermanent, err)
}

// RecordTransition writes one lifecycle step: the read-model row, an audit event (once per
// Key, however often the activity is retried) and a status event on lethe.events.
func (a *Activities) RecordTransition(ctx context.Context, t Transition) error {
	state, err := json.Marshal(t.State)
	if err != nil {
		return permanent("encoding request state", err)
	}
	var recorded bool
	err = pgx.BeginFunc(ctx, a.Store.Pool, func(tx pgx.Tx) error {
		err := a.Store.Requests().Record(ctx, tx, store.RequestRow{
			ID: t.RequestID, TenantID: t.TenantID, Type: t.Type, Status: t.Status, Regime: t.Regime, Country: t.Country,
			Extended: t.Extended, ReceivedAt: t.ReceivedAt, DueDate: t.DueDate, State: state, UpdatedAt: t.At,
		})
		if err != nil {
			return err
		}
		recorded, err = a.Store.Audit().Append(ctx, tx, store.Event{Key: t.Key, TenantID: t.TenantID, At: t.At, Actor: t.Actor, Action: t.Action, RequestID: t.RequestID, Detail: t.Detail})
		return err
	})
	if err != nil {
		return err
	}
	if recorded && domain.Terminal(t.Status) { // once, however often the activity is retried
		a.Metrics.Closed(t.TenantID, t.Type, t.Status, t.At.Sub(t.ReceivedAt).Seconds())
	}
	return a.publish(ctx, bus.TopicEvents, t.RequestID, bus.Event{
		Schema: schemas.Event, Version: schemas.Version, ID: t.Key, Type: t.Action,
		TenantID: t.TenantID, RequestID: t.RequestID, Status: t.Status, OccurredAt: t.At.UTC(),
		Data: eventData(t),
	})
}

// eventData is what a status event tells other services: the deadline, for a rectification
// the names of the corrected fields (Art. 19), never their values, and for a closed workflow
// why it closed.
func eventData(t Transition) map[string]any {
	data := map[string]any{"due_date": t.DueDate, "extended": t.Extended}
	if f, ok := t.Detail["fields"]; ok {
		data["fields"] = f
	}
	// A request whose workflow closed: how it closed, and the reason for the DPO.
	if cs, ok := t.Detail["close_status"]; ok {
		data["close_status"], data["reason"] = cs, t.Detail["note"]
	}
	return data
}

// DispatchCommand publishes a connector command carrying this activity's task token and
// returns pending: the bridge completes the activity when the connector's result arrives. A
// retry publishes the same idempotency key again; the connector runner answers it from its
// stored result instead of acting twice.
func (a *Activities) DispatchCommand(ctx context.Context, d Dispatch) (domain.Output, error) {
	info := activity.GetInfo(ctx)
	keys, err := a.Keys.Ring(d.Connector)
	if err != nil {
		return domain.Output{}, permanent("sealing the command", err)
	}
	cmd := protocol.Command{
		Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion,
		ID:             fmt.Sprintf("%s:%d", d.IdempotencyKey, info.Attempt),
		IdempotencyKey: d.IdempotencyKey, RequestID: d.RequestID, TenantID: d.TenantID,
		Connector: d.Connector, Action: d.Action, TaskToken: encodeToken(info.TaskToken),
		IssuedAt: a.now().UTC(),
	}
	var subject *connectors.Subject
	// Find and purge work on criteria and name nobody.
	if role, _ := connectors.RoleOf(connectors.Capability(d.Action)); role.Subject {
		s, err := a.subject(ctx, d.RequestID)
		if err != nil {
			return domain.Output{}, err
		}
		if err := a.checkConsent(ctx, d, s); err != nil {
			return domain.Output{}, err
		}
		subject = &s
	}
	if d.ExpiryID != "" {
		s, err := a.expirySubject(ctx, d.ExpiryID)
		if err != nil {
			return domain.Output{}, err
		}
		subject = &s
	}
	if d.Action == "rectify" {
		changes, err := a.changes(ctx, d.RequestID)
		if err != nil {
			return domain.Output{}, err
		}
		if d.Params == nil {
			d.Params = map[string]any{}
		}
		d.Params["changes"] = changes
	}
	var params json.RawMessage
	if len(d.Params) > 0 {
		raw, err := json.Marshal(d.Params)
		if err != nil {
			return domain.Output{}, permanent("encoding command params", err)
		}
		params = raw
	}
	if err := cmd.Seal(keys, subject, params); err != nil {
		return domain.Output{}, permanent("sealing the command", err)
	}
	rec := store.Command{ID: cmd.ID, RequestID: d.RequestID, TenantID: d.TenantID, Connector: d.Connector, Action: d.Action, IssuedAt: cmd.IssuedAt}
	if d.ExportLocation != "" {
		cmd.Export = &protocol.ExportLocation{Location: d.ExportLocation}
		rec.ExportPrefix = cmd.Export.Prefix(d.Connector)
	}
	// Recorded before it is sent: the bridge accepts only results that match a recorded command.
	if err := a.Store.RecordCommand(ctx, rec, info.TaskToken); err != nil {
		return domain.Output{}, err
	}
	if err := a.publish(ctx, protocol.CommandTopic(d.Connector), d.RequestID, cmd); err != nil {
		return domain.Output{}, err
	}
	return domain.Output{}, activity.ErrResultPending
}

// subject reads the subject's proven identifiers (see internal/requests).
func (a *Activities) subject(ctx context.Context, requestID string) (connectors.Subject, error) {
	_, ids, err := a.Store.Subjects().Proven(ctx, requestID)
	if errors.Is(err, store.ErrNotFound) {
		return connectors.Subject{}, permanent("the subject of request "+requestID+" is no longer known to Lethe", nil)
	}
	if err != nil {
		return connectors.Subject{}, err
	}
	s := connectors.Subject{Email: ids.Email, Phone: ids.Phone, CustomerID: ids.CustomerID}
	if s == (connectors.Subject{}) {
		return s, permanent("no identifier of the subject of request "+requestID+" is proven; staff can confirm one (lethe requests verify)", nil)
	}
	return s, nil
}

// changes reads the corrected values of a rectification.
func (a *Activities) changes(ctx context.Context, requestID string) (map[string]any, error) {
	changes, err := a.Store.Subjects().Changes(ctx, requestID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(changes) == 0) {
		return nil, permanent("request "+requestID+" has no corrected values on record", nil)
	}
	if err != nil {
		return nil, err
	}
	return changes, nil
}

// NotifySubject sends a notice to the subject's email address. It records the send in the
// audit trail (kind and message id, never the address). A subject without an email address
// is recorded as not notified.
func (a *Activities) NotifySubject(ctx context.Context, n Notice) error {
	id, err := a.mailSubject(ctx, n)
	if err != nil && !errors.Is(err, errNoEmail) {
		return err
	}
	return a.recordNotice(ctx, n, id)
}

// recordNotice writes the audit event of a notice sent (message id) or skipped (id "").
func (a *Activities) recordNotice(ctx context.Context, n Notice, id string) error {
	if id == "" {
		return a.audit(ctx, n.Key, n.TenantID, "lethe", "subject.notice_skipped", n.RequestID,
			map[string]any{"kind": n.Kind, "sent": false, "why": "no email address on record"})
	}
	return a.audit(ctx, n.Key, n.TenantID, "lethe", "subject.notified", n.RequestID, map[string]any{"kind": n.Kind, "sent": true, "message_id": id})
}

// errNoEmail: the subject has no email address on record.
var errNoEmail = errors.New("no email address on record")

// mailSubject sends a notice to the subject's email address and returns the provider's
// message id; its errors are classified for Temporal's retries.
func (a *Activities) mailSubject(ctx context.Context, n Notice) (string, error) {
	email, lang, err := a.Store.Subjects().Contact(ctx, n.TenantID, n.RequestID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if email == "" {
		return "", errNoEmail
	}
	data := map[string]any{}
	for k, v := range n.Data {
		data[k] = v
	}
	if a.PublicURL != "" && a.MyAccountPath != nil {
		data["Link"] = strings.TrimSuffix(a.PublicURL, "/") + a.MyAccountPath(n.TenantID) + "/requests/" + n.RequestID
	}
	id, err := a.Mail.Send(ctx, mail.Notice{
		Kind: mail.Kind(n.Kind), To: email, Tenant: a.branding(n.TenantID), Language: lang, Data: data,
	})
	if err != nil {
		return "", mailError("sending the "+n.Kind+" notice", err)
	}
	return id, nil
}

// IssueVerificationCode sends the subject a one-time code for the request: by text when the
// request has a phone number but no email address and the tenant texts (tenants[].sms), else
// by email (identity.Choose). The code's keyed hash and channel are stored only once the
// provider accepted it, so a code that never left does not replace one that did; the audit
// trail records the send: channel and message id, never the address, number or code.
func (a *Activities) IssueVerificationCode(ctx context.Context, n Notice) error {
	n.Kind = "verification_code"
	sent, err := a.sendCode(ctx, n, a.now(), "")
	var failed *sendFailure
	switch {
	case errors.Is(err, identity.ErrTooManyCodes), errors.Is(err, identity.ErrNotFound):
		return permanent("issuing a verification code", err)
	case errors.As(err, &failed):
		return failed.err // classified for Temporal's retries
	case errors.Is(err, identity.ErrNoEmail):
		why := "no email address on record"
		if sent.phone {
			why += ", and the tenant sends no texts (tenants[].sms)"
		}
		return a.audit(ctx, n.Key, n.TenantID, "lethe", "subject.notice_skipped", n.RequestID,
			map[string]any{"kind": n.Kind, "sent": false, "why": why})
	case err != nil:
		return err
	}
	return a.audit(ctx, n.Key, n.TenantID, "lethe", "subject.notified", n.RequestID,
		map[string]any{"kind": n.Kind, "sent": true, "channel": string(sent.channel), "message_id": sent.msgID})
}

// ResendVerificationCode is IssueVerificationCode for a subject who asked for a new code
// (the request workflow's resend update), by the channel they asked for or, with none, the
// one IssueVerificationCode picks: earlier codes stop working, whichever channel they went
// by. Every failure is permanent, with a type the asking surface maps to an answer for the
// subject; they ask again.
func (a *Activities) ResendVerificationCode(ctx context.Context, r CodeRequest) (CodeSent, error) {
	n := Notice{Key: r.Key, RequestID: r.RequestID, TenantID: r.TenantID, Kind: "verification_code"}
	asked, err := identity.ParseChannel(r.Channel)
	if err != nil {
		return CodeSent{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrChannelUnavailable, err)
	}
	sent, err := a.sendCode(ctx, n, r.At, asked)
	var exceeded *limits.Exceeded
	var failed *sendFailure
	switch {
	case errors.Is(err, identity.ErrTooManyCodes) && errors.As(err, &exceeded):
		return CodeSent{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTooManyCodes, err, int(exceeded.RetryAfter.Seconds()))
	case errors.Is(err, identity.ErrNotFound):
		return CodeSent{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrNotAwaitingCode, err)
	case errors.Is(err, identity.ErrNoEmail):
		return CodeSent{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrNoEmail, err)
	case errors.Is(err, identity.ErrNoPhone):
		return CodeSent{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrNoPhone, err)
	case errors.Is(err, identity.ErrNoTexts):
		return CodeSent{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrNoTexts, err)
	case errors.Is(err, identity.ErrNoChannel):
		return CodeSent{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrChannelUnavailable, err)
	case errors.As(err, &failed) && failed.channel == identity.ChannelSMS:
		typ := ErrTextUnavailable
		if numberRefused(failed.cause) {
			typ = ErrTextRefused
		}
		return CodeSent{}, temporal.NewNonRetryableApplicationError(errorText(failed.err), typ, failed.cause)
	case errors.As(err, &failed):
		return CodeSent{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrMailUnavailable, err)
	case err != nil:
		return CodeSent{}, err
	}
	err = a.audit(ctx, r.Key, r.TenantID, "lethe", "subject.verification_code_sent", r.RequestID,
		map[string]any{"channel": string(sent.channel), "message_id": sent.msgID, "expires_at": sent.expires.UTC()})
	return CodeSent{ExpiresAt: sent.expires, Channel: string(sent.channel)}, err
}

// codeSend is a code on its way: the channel it went by, the provider's message id (Mailgun's,
// or Twilio's SID) and when it expires; phone says the subject has a number on record.
type codeSend struct {
	channel identity.Channel
	msgID   string
	expires time.Time
	phone   bool
}

// sendFailure is a code's email or text the provider did not take: err is classified for
// Temporal's retries, cause is the provider's error.
type sendFailure struct {
	channel    identity.Channel
	err, cause error
}

func (e *sendFailure) Error() string { return e.err.Error() }
func (e *sendFailure) Unwrap() error { return e.err }

// sendCode issues a code as of at and sends it by the channel identity.Choose picks for
// asked: an email through mailSubject, or a text from the tenant's sender. Each attempt is a
// new code, so a text is never settled from an earlier one (texts.Sender.Sent): the earlier
// code, never stored, does not work anyway.
func (a *Activities) sendCode(ctx context.Context, n Notice, at time.Time, asked identity.Channel) (codeSend, error) {
	ids, _, err := a.Store.Subjects().Given(ctx, n.TenantID, n.RequestID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return codeSend{}, err
	}
	texts := a.Texts != nil && a.Texts.Enabled(n.TenantID)
	sent := codeSend{phone: ids.Phone != ""}
	sent.channel, err = identity.Choose(asked, identity.Reach{Email: ids.Email != "", Phone: ids.Phone != "", Texts: texts})
	if err != nil {
		return sent, err
	}
	sent.expires, err = a.Codes.SendAt(ctx, n.RequestID, at, sent.channel, func(code string, expires time.Time) error {
		minutes := max(int(expires.Sub(at).Round(time.Minute).Minutes()), 1)
		if sent.channel == identity.ChannelSMS {
			// The key is the text's own: the connector answers a repeated key from memory,
			// and every attempt carries a new code.
			sid, err := a.Texts.Send(ctx, n.TenantID, n.Key+":"+nonce(), ids.Phone, codeText(a.branding(n.TenantID).Name, code, minutes))
			if err != nil {
				return &sendFailure{channel: sent.channel, err: textError("texting the verification code", err), cause: err}
			}
			sent.msgID = sid
			return nil
		}
		n.Data = map[string]any{"RequestID": n.RequestID, "Code": code, "ExpiresInMinutes": minutes}
		id, err := a.mailSubject(ctx, n)
		switch {
		case errors.Is(err, errNoEmail): // the subject was forgotten meanwhile
			return identity.ErrNoEmail
		case err != nil:
			return &sendFailure{channel: sent.channel, err: err, cause: err} // classified by mailSubject
		}
		sent.msgID = id
		return nil
	})
	return sent, err
}

// numberRefused reports whether Twilio refused a text for its recipient (an invalid number,
// one that replied STOP: a 400 with Twilio's code), which the subject can act on, rather than
// for Lethe's setup (credentials, a tenant without a sender) or an outage.
func numberRefused(err error) bool {
	var api *sms.APIError
	return errors.As(err, &api) && api.Status == http.StatusBadRequest
}

// errorText is the message of an activity error without Temporal's wrapping.
func errorText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

// nonce is a random suffix for keys that must not repeat.
func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Remind records a deadline reminder or an overdue escalation, publishes it on lethe.events
// (where staff channels such as Slack and the dashboard pick it up) and emails it: a reminder to
// the tenant's staff, the escalation to its DPO. The email names the request, its type and due
// date, never the subject.
func (a *Activities) Remind(ctx context.Context, r Reminder) error {
	t := a.Tenants[r.TenantID]
	action, actor, kind, to := "request.deadline_reminder", "lethe", mail.KindDeadlineReminder, t.StaffAddress()
	if r.Kind == "overdue" {
		action, actor, kind, to = "request.overdue_escalated", "lethe (escalation to the DPO)", mail.KindOverdueEscalation, t.DPOAddress()
	}
	if err := a.audit(ctx, r.Key, r.TenantID, actor, action, r.RequestID, map[string]any{"due_date": r.DueDate}); err != nil {
		return err
	}
	err := a.publish(ctx, bus.TopicEvents, r.RequestID, bus.Event{
		Schema: schemas.Event, Version: schemas.Version, ID: r.Key, Type: action, TenantID: r.TenantID,
		RequestID: r.RequestID, OccurredAt: r.At.UTC(), Data: map[string]any{"due_date": r.DueDate, "kind": r.Kind},
	})
	if err != nil {
		return err
	}
	typ := func(ctx context.Context) (string, error) {
		typ, err := a.Store.Requests().Type(ctx, r.RequestID)
		if errors.Is(err, store.ErrNotFound) {
			return "", permanent("request "+r.RequestID+" is not in the read model", nil)
		}
		return typ, err
	}
	about := store.Event{TenantID: r.TenantID, RequestID: r.RequestID}
	mailed := a.mailStaff(ctx, r.Key+":mail", kind, to, about, func(ctx context.Context) (map[string]any, error) {
		typ, err := typ(ctx)
		if err != nil {
			return nil, err
		}
		data := map[string]any{"RequestID": r.RequestID, "RequestType": typ, "DueDate": r.DueDate}
		if a.PublicURL != "" {
			data["Link"] = strings.TrimSuffix(a.PublicURL, "/") + "/v1/requests/" + r.RequestID
		}
		return data, nil
	})
	return a.alsoSlack(ctx, mailed, r.TenantID, r.Key, func(ctx context.Context) (slackmsg.Alert, error) {
		typ, err := typ(ctx)
		return slackmsg.DeadlineAlert(r.Kind, r.RequestID, typ, r.DueDate, a.daysLeft(r.DueDate)), err
	})
}

// mailStaff emails a notice to the tenant's staff or DPO once per key: a retry after the send
// (the audit write failed) does not mail them twice. about names what the notice is about (a
// request or a breach) for the audit event that records the send; data builds the notice's data.
func (a *Activities) mailStaff(ctx context.Context, key string, kind mail.Kind, to string, about store.Event, data func(context.Context) (map[string]any, error)) error {
	sent, err := a.Store.Audit().Recorded(ctx, key)
	if err != nil {
		return fmt.Errorf("checking whether the %s was mailed: %w", kind, err)
	}
	if sent {
		return nil
	}
	d, err := data(ctx)
	if err != nil {
		return err
	}
	id, err := a.Mail.Send(ctx, mail.Notice{Kind: kind, To: to, Tenant: a.branding(about.TenantID), Data: d})
	if err != nil {
		return mailError("sending the "+string(kind), err)
	}
	about.Key, about.At, about.Actor, about.Action = key, a.now(), "lethe", "staff.notified"
	about.Detail = map[string]any{"kind": kind, "message_id": id}
	_, err = a.Store.Audit().Append(ctx, a.Store.Pool, about)
	return err
}

// ReportFailure surfaces an activity that failed for good where the workflow carries on without
// it (a reminder): in the audit trail, on lethe.events and in the worker's log. The reason is an
// error text, which Lethe keeps free of personal data.
func (a *Activities) ReportFailure(ctx context.Context, f Failure) error {
	activity.GetLogger(ctx).Error("activity failed for good", "activity", f.Activity,
		"request_id", f.RequestID, "breach_id", f.BreachID, "tenant_id", f.TenantID, "reason", f.Reason)
	detail := map[string]any{"activity": f.Activity, "reason": f.Reason}
	action, key := "request.activity_failed", f.RequestID
	if f.BreachID != "" {
		action, key = "breach.activity_failed", f.BreachID
	}
	_, err := a.Store.Audit().Append(ctx, a.Store.Pool, store.Event{Key: f.Key, TenantID: f.TenantID, At: a.now(), Actor: "lethe",
		Action: action, RequestID: f.RequestID, BreachID: f.BreachID, Detail: detail})
	if err != nil {
		return err
	}
	return a.publish(ctx, bus.TopicEvents, key, bus.Event{
		Schema: schemas.Event, Version: schemas.Version, ID: f.Key, Type: action,
		TenantID: f.TenantID, RequestID: f.RequestID, BreachID: f.BreachID, OccurredAt: f.At.UTC(), Data: detail,
	})
}

// publish sends a message on the bus. A message the bus refuses as invalid (it does not encode
// or does not match its schema) can never be sent: this is the one place that makes it a
// permanent failure, for every activity.
func (a *Activities) publish(ctx context.Context, topic, key string, msg any) error {
	err := a.Bus.Publish(ctx, topic, key, msg)
	if bus.IsInvalid(err) {
		return permanent(err.Error(), err)
	}
	return err
}

// RecordConsent appends a consent decision to the ledger, the subject kept as a keyed hash.
func (a *Activities) RecordConsent(ctx context.Context, c ConsentChange) error {
	s, err := a.subject(ctx, c.RequestID)
	if err != nil {
		return err
	}
	return a.Store.Consent().Record(ctx, store.ConsentChange{
		Key: c.Key, TenantID: c.TenantID, SubjectHash: crypto.SubjectHash(a.SigningKey, c.TenantID, s.Email, s.Phone, s.CustomerID),
		Purpose: c.Purpose, Granted: c.Granted, Source: c.Source, RequestID: c.RequestID, ChangedAt: c.At,
	})
}

// BuildExport packages the subject's records into the downloadable ZIP and records it.
func (a *Activities) BuildExport(ctx context.Context, r ExportRequest) (ExportPackage, error) {
	in := exportpkg.Input{RequestID: r.RequestID, TenantID: r.TenantID, Kind: r.Kind, GeneratedAt: r.At, Notice: a.notice(r.TenantID)}
	for _, name := range slices.Sorted(maps.Keys(r.Sources)) {
		src := exportpkg.Source{Connector: name}
		for _, t := range r.Sources[name] {
			src.Tables = append(src.Tables, protocol.ExportRef(t))
		}
		in.Sources = append(in.Sources, src)
	}
	target := a.exportPrefix(r.TenantID, r.RequestID) + "/" + r.RequestID + "-" + r.Kind + ".zip"
	pkg, err := exportpkg.Build(ctx, a.Exports, target, in)
	if err != nil {
		return ExportPackage{}, fmt.Errorf("building the export of request %s: %w", r.RequestID, err)
	}
	if err := a.Store.Requests().SetExport(ctx, r.RequestID, store.Export{URI: pkg.URI, SHA256: pkg.SHA256, Bytes: pkg.Bytes}); err != nil {
		return ExportPackage{}, err
	}
	return ExportPackage{URI: pkg.URI, SHA256: pkg.SHA256, Bytes: pkg.Bytes}, nil
}

// mailError sorts a failed send: permanent, throttled (retry when the provider said), or
// transient. Mail errors name the notice and the reason, never the address.
func mailError(doing string, err error) error {
	if mail.IsPermanent(err) {
		return permanent(err.Error(), err)
	}
	if d, ok := mail.RetryAfter(err); ok {
		// The provider said when to come back: wait that long, not the policy's backoff.
		return temporal.NewApplicationErrorWithOptions(doing+": throttled", "throttled",
			temporal.ApplicationErrorOptions{NextRetryDelay: d, Cause: err})
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func (a *Activities) audit(ctx context.Context, key, tenant, actor, action, requestID string, detail map[string]any) error {
	return a.auditIn(ctx, a.Store.Pool, key, tenant, actor, action, requestID, detail)
}

// auditIn is audit inside a transaction of the caller's.
func (a *Activities) auditIn(ctx context.Context, db store.Querier, key, tenant, actor, action, requestID string, detail map[string]any) error {
	_, err := a.Store.Audit().Append(ctx, db, store.Event{Key: key, TenantID: tenant, At: a.now(), Actor: actor, Action: action, RequestID: requestID, Detail: detail})
	return err
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func encodeToken(t []byte) string { return base64Std.EncodeToString(t) }
