package requests

// The subject's own steps: proving identity (a one-time code sent by email or text, or the
// host app's signed assertion) and downloading the export through a signed, expiring link. The HTTP API,
// MyAccount and Kafka intake all go through these methods.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/limits"
	"github.com/lethe-privacy/lethe/internal/links"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// ExportLinkTTL is how long a signed export link works.
const ExportLinkTTL = 24 * time.Hour

// Errors of the subject's steps. Their messages are written for the subject and never hold a
// code, an address or any other personal data. Each also matches the broader error noted, so
// callers that only know the broad one still answer sensibly.
var (
	// ErrCodeWrong: the code does not match (also ErrInvalid).
	ErrCodeWrong = subjectError("that code is not right; check the latest email and try again", ErrInvalid)
	// ErrNoCodeSent: no code was ever sent for this request (also ErrCodeWrong).
	ErrNoCodeSent = subjectError("no code has been sent for this request; ask for a new code", ErrInvalid, ErrCodeWrong)
	// ErrCodeExpired: the code is too old (also ErrInvalid).
	ErrCodeExpired = subjectError("the code has expired; ask for a new code", ErrInvalid)
	// ErrCodeUsed: the code worked once already (also ErrCodeExpired).
	ErrCodeUsed = subjectError("the code was already used; ask for a new code", ErrInvalid, ErrCodeExpired)
	// ErrTooManyAttempts: too many wrong codes; a new code is needed (also ErrInvalid).
	ErrTooManyAttempts = subjectError("a wrong code was entered too many times; ask for a new code", ErrInvalid)
	// ErrTooManyCodes: enough codes were sent for now (also ErrTooManyAttempts).
	ErrTooManyCodes = subjectError("several codes were sent already; wait a while, then ask again", ErrInvalid, ErrTooManyAttempts)
	// ErrAlreadyVerified: the identity is already confirmed (also ErrRejected).
	ErrAlreadyVerified = subjectError("the identity for this request is already confirmed", ErrRejected)
	// ErrRequestClosed: the request ended before its identity was confirmed (also ErrRejected).
	ErrRequestClosed = subjectError("the request is closed", ErrRejected)
	// ErrNoEmail: there is no email address to send a code to (also ErrInvalid).
	ErrNoEmail = subjectError("this request has no email address to send a code to", ErrInvalid)
	// ErrNoPhone: a code was asked for by text, and there is no phone number (also ErrInvalid).
	ErrNoPhone = subjectError("this request has no phone number to text a code to; ask for the code by email", ErrInvalid)
	// ErrNoTexts: a code was asked for by text from a tenant that sends none (also ErrInvalid).
	ErrNoTexts = subjectError("codes are not sent by text for this organisation; ask for the code by email", ErrInvalid)
	// ErrChannel: a channel that is not email or sms (also ErrInvalid).
	ErrChannel = subjectError("channel must be email or sms", ErrInvalid)
	// ErrTextRefused: Twilio refused to text the number, e.g. an invalid number or one that
	// replied STOP; the error's message names Twilio's code (also ErrInvalid).
	ErrTextRefused = subjectError("the text could not be sent to this number; ask for the code by email", ErrInvalid)
	// ErrAssertionExpired: the identity assertion is past its expiry (also ErrInvalid).
	ErrAssertionExpired = subjectError("identity_assertion has expired", ErrInvalid)
	// ErrAssertionInvalid: the assertion is forged, for another tenant or malformed (also ErrInvalid).
	ErrAssertionInvalid = subjectError("identity_assertion is not valid for this tenant", ErrInvalid)
	// ErrAssertionReplayed: the assertion was used before; mint one per submission (also ErrInvalid).
	ErrAssertionReplayed = subjectError("identity_assertion was already used; mint a new one for each submission", ErrInvalid)
	// ErrAssertionMismatch: the assertion vouches for someone else (also ErrInvalid).
	ErrAssertionMismatch = subjectError("identity_assertion does not vouch for the subject given", ErrInvalid)
	// ErrNoExport: the request has no export to download (yet) (also ErrNotFound).
	ErrNoExport = subjectError("there is no export to download for this request", ErrNotFound)
	// ErrLinkInvalid: a download link that is tampered with or not for this request.
	ErrLinkInvalid = errors.New("the download link is not valid")
	// ErrLinkExpired: a genuine download link past its expiry (also ErrLinkInvalid).
	ErrLinkExpired = subjectError("the download link has expired; ask for a new one", ErrLinkInvalid)
	// ErrUnavailable: a service Lethe needs (mail) failed; trying again later may work.
	ErrUnavailable = errors.New("a service Lethe depends on is unavailable")
)

type subjectErr struct {
	msg  string
	also []error
}

func subjectError(msg string, also ...error) error { return &subjectErr{msg, also} }

func (e *subjectErr) Error() string { return e.msg }

func (e *subjectErr) Is(target error) bool {
	for _, a := range e.also {
		if errors.Is(a, target) {
			return true
		}
	}
	return false
}

// VerifyCode checks the one-time code the subject received and, when it is right, records
// proof of the one identifier the code went to (codeProof) and marks the request's identity
// verified by that method: email_code for an emailed code, sms_code for a texted one.
func (s *Service) VerifyCode(ctx context.Context, tenant, id, code string) error {
	// Every check counts as a guess, whatever its outcome: the subject limit bounds the
	// guesses at the subject's codes across all of the subject's requests.
	if err := s.limitRequest(ctx, limits.Verify, tenant, id); err != nil {
		return err
	}
	st, err := s.Get(ctx, tenant, id)
	if err != nil {
		return err
	}
	if err := awaitingIdentity(st); err != nil {
		return err
	}
	codes, err := s.codes()
	if err != nil {
		return err
	}
	channel, err := codes.Check(ctx, id, strings.TrimSpace(code))
	if err != nil {
		return codeError(err)
	}
	names, proof := codeProof(channel, s.now().UTC())
	if err := s.prove(ctx, tenant, id, names, proof); err != nil {
		return err
	}
	_, err = s.Decide(ctx, tenant, id, workflows.UpdateVerifyIdentity, workflows.Verification{Method: proof.Method, Actor: "subject"})
	if errors.Is(err, ErrRejected) {
		// Raced with another verification or the request's end: say which.
		if st, gerr := s.Get(ctx, tenant, id); gerr == nil {
			if aerr := awaitingIdentity(st); aerr != nil {
				return aerr
			}
		}
	}
	return err
}

// codeProof is what a code that went by channel proves: the address it reached, and only
// that. An emailed code never proves the phone number, nor a texted one the email address.
func codeProof(channel identity.Channel, at time.Time) ([]string, Proof) {
	return []string{channel.Identifier()}, Proof{Method: channel.Method(), Actor: "subject", At: at}
}

// ResendCode sends the subject a new verification code by channel (email, sms, or "" for the
// one the first code took); earlier codes stop working.
func (s *Service) ResendCode(ctx context.Context, tenant, id, channel string) error {
	_, err := s.SendCode(ctx, tenant, id, channel)
	return err
}

// SendCode is ResendCode that also says when the new code expires and which channel it took.
func (s *Service) SendCode(ctx context.Context, tenant, id, channel string) (activities.CodeSent, error) {
	asked, err := identity.ParseChannel(channel)
	if err != nil {
		return activities.CodeSent{}, ErrChannel
	}
	if err := s.limitRequest(ctx, limits.Resend, tenant, id); err != nil {
		return activities.CodeSent{}, err
	}
	st, err := s.Get(ctx, tenant, id)
	if err != nil {
		return activities.CodeSent{}, err
	}
	if err := awaitingIdentity(st); err != nil {
		return activities.CodeSent{}, err
	}
	// Answered here, before the workflow is asked; the activity decides again as it sends.
	if _, err := s.codeChannel(ctx, tenant, id, asked); err != nil {
		return activities.CodeSent{}, err
	}
	codes, err := s.codes()
	if err != nil {
		return activities.CodeSent{}, err
	}
	// The workflow sends it, through the one path its notices take, as of the time on the clock
	// that will check it.
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: workflows.UpdateResendCode, Args: []any{workflows.CodeResend{At: codes.Clock(), Channel: string(asked)}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var sent activities.CodeSent
	if err == nil {
		err = h.Get(ctx, &sent)
	}
	if err != nil {
		return activities.CodeSent{}, s.resendError(ctx, tenant, id, err)
	}
	return sent, nil
}

// codeChannel is the channel a code for request id goes by when asked is asked for
// (identity.Choose), or the subject's error saying why it cannot.
func (s *Service) codeChannel(ctx context.Context, tenant, id string, asked identity.Channel) (identity.Channel, error) {
	ids, _, err := s.Store.Subjects().Given(ctx, tenant, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	t, _ := s.Cfg.Tenant(tenant)
	ch, err := identity.Choose(asked, identity.Reach{Email: ids.Email != "", Phone: ids.Phone != "", Texts: t.SMS != ""})
	return ch, channelError(err)
}

// channelError is the subject's error for identity's channel errors.
func channelError(err error) error {
	switch {
	case errors.Is(err, identity.ErrNoEmail):
		return ErrNoEmail
	case errors.Is(err, identity.ErrNoPhone):
		return ErrNoPhone
	case errors.Is(err, identity.ErrNoTexts):
		return ErrNoTexts
	case errors.Is(err, identity.ErrNoChannel):
		return ErrChannel
	}
	return err
}

// CodeDelivery is where a request's code goes, for the page that asks for it.
type CodeDelivery struct {
	// Channel is the latest code's (email, sms), or the first code's to come.
	Channel identity.Channel
	// PhoneEnding is the last two digits of the number a text goes to; nothing more is shown.
	PhoneEnding string
	// CanText: a code can be texted instead (a phone number on record, a tenant that texts).
	CanText bool
	// CanEmail: a code can be emailed instead.
	CanEmail bool
}

// Delivery says where request id's code went, or goes when none was sent yet, and which
// channels a new one can take. It reveals no identifier beyond a phone number's last two
// digits.
func (s *Service) Delivery(ctx context.Context, tenant, id string) (CodeDelivery, error) {
	ids, _, err := s.Store.Subjects().Given(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return CodeDelivery{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return CodeDelivery{}, err
	}
	t, _ := s.Cfg.Tenant(tenant)
	reach := identity.Reach{Email: ids.Email != "", Phone: ids.Phone != "", Texts: t.SMS != ""}
	d := CodeDelivery{CanText: reach.Phone && reach.Texts, CanEmail: reach.Email}
	if len(ids.Phone) >= 2 {
		d.PhoneEnding = ids.Phone[len(ids.Phone)-2:]
	}
	codes, err := s.codes()
	if err != nil {
		return d, err
	}
	ch, sent, err := codes.Sent(ctx, id)
	if err != nil {
		return d, err
	}
	if !sent {
		ch, _ = identity.Choose("", reach)
	}
	d.Channel = ch
	return d, nil
}

// resendError is the subject's answer to a resend the workflow did not do.
func (s *Service) resendError(ctx context.Context, tenant, id string, err error) error {
	var app *temporal.ApplicationError
	var failed *temporal.ActivityError
	var gone *serviceerror.NotFound
	switch {
	case errors.As(err, &gone):
		return ErrRequestClosed // the workflow ended and is gone
	case errors.As(err, &failed):
		if errors.As(err, &app) {
			switch app.Type() {
			case activities.ErrTooManyCodes:
				var seconds int
				_ = app.Details(&seconds)
				return codeError(fmt.Errorf("%w: %w", identity.ErrTooManyCodes,
					&limits.Exceeded{Action: limits.Resend, Scope: "request", RetryAfter: time.Duration(seconds) * time.Second}))
			case activities.ErrNotAwaitingCode:
				return ErrRequestClosed
			case activities.ErrNoEmail:
				return ErrNoEmail
			// The request changed between our check and the activity's: say what it found.
			case activities.ErrNoPhone:
				return ErrNoPhone
			case activities.ErrNoTexts:
				return ErrNoTexts
			case activities.ErrChannelUnavailable:
				return ErrChannel
			case activities.ErrTextRefused:
				// Twilio's status and code, never the number.
				return fmt.Errorf("%w (%s)", ErrTextRefused, app.Message())
			case activities.ErrTextUnavailable:
				return fmt.Errorf("%w: texting the verification code: %s", ErrUnavailable, app.Message())
			case activities.ErrMailUnavailable:
				// Mail errors name the notice kind and status, never the address.
				return fmt.Errorf("%w: sending the verification code: %s", ErrUnavailable, app.Message())
			}
		}
		return fmt.Errorf("sending a verification code: %w", err)
	case errors.As(err, &app):
		// The workflow's validator refused: say why, as the request stands now.
		if st, gerr := s.Get(ctx, tenant, id); gerr == nil {
			if aerr := awaitingIdentity(st); aerr != nil {
				return aerr
			}
		}
		return fmt.Errorf("%w: %s", ErrRejected, app.Message())
	}
	return fmt.Errorf("sending a verification code: %w", err)
}

// awaitingIdentity says why a request no longer takes identity proof, or nil if it does.
func awaitingIdentity(st domain.RequestState) error {
	switch {
	case st.IdentityVerifiedAt != nil:
		return ErrAlreadyVerified
	case domain.Terminal(st.Status) || st.Status == domain.StatusFailed:
		return ErrRequestClosed
	case st.Status != domain.StatusReceived && st.Status != domain.StatusIdentityPending:
		return ErrAlreadyVerified
	}
	return nil
}

func codeError(err error) error {
	switch {
	case errors.Is(err, identity.ErrWrongCode):
		return ErrCodeWrong
	case errors.Is(err, identity.ErrNoCode):
		return ErrNoCodeSent
	case errors.Is(err, identity.ErrExpired):
		return ErrCodeExpired
	case errors.Is(err, identity.ErrUsed):
		return ErrCodeUsed
	case errors.Is(err, identity.ErrTooManyAttempts):
		return ErrTooManyAttempts
	case errors.Is(err, identity.ErrTooManyCodes):
		// Keep the wait, for Retry-After.
		var wait *limits.Exceeded
		if errors.As(err, &wait) {
			return fmt.Errorf("%w: %w", ErrTooManyCodes, wait)
		}
		return ErrTooManyCodes
	case errors.Is(err, identity.ErrNotFound):
		// The request stopped waiting for identity between our read and the code's.
		return ErrRequestClosed
	}
	return fmt.Errorf("checking the verification code: %w", err)
}

// SubmitWithAssertion submits a request the host app vouches for with a signed identity
// assertion (HS256 JWT, tenant's assertion key, audience public URL + "/" + tenant id). The
// request starts with its identity verified. Identifiers missing from the submission are taken
// from the assertion; any given must match it, so a valid assertion for one person cannot
// carry a request about another.
func (s *Service) SubmitWithAssertion(ctx context.Context, sub Submission, token string) (string, error) {
	a, err := s.VerifyAssertion(sub.TenantID, token)
	if err != nil {
		return "", err
	}
	if err := matchAssertion(&sub.Subject, a); err != nil {
		return "", err
	}
	// Checked before it is remembered, so a submission that can never succeed does not use
	// up the assertion.
	if err := s.Validate(&sub); err != nil {
		return "", err
	}
	if err := s.limitSubmit(ctx, sub); err != nil {
		return "", err
	}
	replays := identity.Replays{Pool: s.Store.Pool, Now: s.Now}
	err = replays.Remember(ctx, identity.Audience(s.Cfg.HTTP.PublicURL, sub.TenantID), a)
	switch {
	case errors.Is(err, identity.ErrAssertionReplayed):
		return "", ErrAssertionReplayed
	case errors.Is(err, identity.ErrAssertionClaims):
		return "", ErrAssertionInvalid
	case err != nil:
		return "", err
	}
	// matchAssertion left only identifiers the assertion signs, so all of them are proven.
	sub.IdentityVerified = true
	sub.Proof = Proof{Method: "assertion", Actor: "host app (assertion " + a.ID + ")", At: s.now().UTC()}
	return s.start(ctx, sub)
}

// VerifyAssertion checks a host app's identity assertion for tenant.
func (s *Service) VerifyAssertion(tenant, token string) (identity.Assertion, error) {
	t, ok := s.Cfg.Tenant(tenant)
	if !ok {
		return identity.Assertion{}, fmt.Errorf("%w: unknown tenant", ErrInvalid)
	}
	key := t.AssertionKey.Value()
	if key == "" || s.Cfg.HTTP.PublicURL == "" {
		// Without a key (or an audience) nothing can vouch for a subject.
		return identity.Assertion{}, ErrAssertionInvalid
	}
	a, err := identity.VerifyAssertion([]byte(key), token, identity.Audience(s.Cfg.HTTP.PublicURL, tenant), s.now())
	switch {
	case err == nil:
		return a, nil
	case errors.Is(err, identity.ErrAssertionExpired):
		return a, ErrAssertionExpired
	case errors.Is(err, identity.ErrAssertionForged), errors.Is(err, identity.ErrAssertionAudience), errors.Is(err, identity.ErrAssertionClaims):
		return a, ErrAssertionInvalid
	}
	return a, fmt.Errorf("checking the identity assertion: %w", err)
}

// matchAssertion fills the subject's missing identifiers from the assertion and fails when a
// given one differs from, or is not vouched for by, the assertion.
func matchAssertion(sub *connectors.Subject, a identity.Assertion) error {
	pairs := []struct {
		given  *string
		vouch  string
		folded bool
	}{{&sub.Email, a.Email, true}, {&sub.Phone, a.Phone, false}, {&sub.CustomerID, a.CustomerID, false}}
	for _, p := range pairs {
		given := strings.TrimSpace(*p.given)
		switch {
		case given == "":
			*p.given = p.vouch
		case p.folded && strings.EqualFold(given, p.vouch), given == p.vouch:
		default:
			return ErrAssertionMismatch
		}
	}
	if *sub == (connectors.Subject{}) {
		return ErrAssertionMismatch
	}
	return nil
}

// ExportLink returns a signed, expiring download link for a completed request's export:
// public URL + /v1/requests/{id}/export?token=...
func (s *Service) ExportLink(ctx context.Context, tenant, id string) (string, time.Time, error) {
	// The live status: the read model may record completion a moment after the workflow.
	st, err := s.Get(ctx, tenant, id)
	if err != nil {
		return "", time.Time{}, err
	}
	export, err := s.Store.Requests().Export(ctx, tenant, id)
	if err != nil {
		return "", time.Time{}, err
	}
	if st.Status != domain.StatusCompleted || export.URI == "" {
		return "", time.Time{}, ErrNoExport
	}
	if s.Cfg.HTTP.PublicURL == "" {
		return "", time.Time{}, errors.New("making an export link: http.public_url is not set")
	}
	signer, err := s.links()
	if err != nil {
		return "", time.Time{}, err
	}
	token, expires := signer.Sign(tenant, id, ExportLinkTTL)
	link := strings.TrimSuffix(s.Cfg.HTTP.PublicURL, "/") + "/v1/requests/" + url.PathEscape(id) + "/export?token=" + url.QueryEscape(token)
	return link, expires, nil
}

// OpenExport opens the export a signed link points at, and records the download in the audit
// trail before handing it over. The caller closes the reader.
func (s *Service) OpenExport(ctx context.Context, token string) (io.ReadCloser, string, string, error) {
	return s.openExport(ctx, "", token)
}

// OpenRequestExport is OpenExport for a link presented at request id's own URL: another
// request's link is not valid there.
func (s *Service) OpenRequestExport(ctx context.Context, id, token string) (io.ReadCloser, string, string, error) {
	return s.openExport(ctx, id, token)
}

func (s *Service) openExport(ctx context.Context, id, token string) (io.ReadCloser, string, string, error) {
	signer, err := s.links()
	if err != nil {
		return nil, "", "", err
	}
	l, err := signer.Verify(token)
	switch {
	case errors.Is(err, links.ErrLinkExpired):
		return nil, "", "", ErrLinkExpired
	case err != nil, id != "" && l.RequestID != id:
		return nil, "", "", ErrLinkInvalid
	}
	// Links are only signed for completed requests, so the package being there is enough.
	export, err := s.Store.Requests().Export(ctx, l.TenantID, l.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", "", ErrLinkInvalid
	}
	if err != nil {
		return nil, "", "", err
	}
	if export.URI == "" {
		return nil, "", "", ErrNoExport
	}
	files, err := s.exports()
	if err != nil {
		return nil, "", "", err
	}
	rc, err := files.Open(ctx, export.URI)
	if err != nil {
		return nil, "", "", fmt.Errorf("opening the export of request %s: %w", l.RequestID, err)
	}
	detail := map[string]any{"sha256": export.SHA256, "link_expires_at": l.Expires.UTC()}
	ref, err := s.RequestSubjectKey(ctx, l.TenantID, l.RequestID)
	if err != nil {
		rc.Close()
		return nil, "", "", err
	}
	if strings.HasPrefix(ref, "request:") { // forgotten: the request is the reference
		ref = ""
	}
	if err := s.auditRef(ctx, l.TenantID, l.RequestID, "subject (signed link)", "request.export_downloaded", ref, detail); err != nil {
		rc.Close()
		return nil, "", "", err
	}
	return rc, path.Base(export.URI), export.SHA256, nil
}

// audit records one event; its key is unique, so every call is its own event.
func (s *Service) audit(ctx context.Context, tenant, id, actor, action string, detail map[string]any) error {
	return s.auditRef(ctx, tenant, id, actor, action, "", detail)
}

// auditRef is audit of an event about the subject with reference subjectRef.
func (s *Service) auditRef(ctx context.Context, tenant, id, actor, action, subjectRef string, detail map[string]any) error {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	key := id + ":" + action + ":" + hex.EncodeToString(b)
	_, err := s.Store.Audit().Append(ctx, s.Store.Pool, store.Event{Key: key, TenantID: tenant, At: s.now(), Actor: actor, Action: action, RequestID: id, SubjectRef: subjectRef, Detail: detail})
	return err
}

func (s *Service) codes() (*identity.Codes, error) {
	if s.Codes != nil {
		return s.Codes, nil
	}
	key := s.Cfg.Secrets.SigningKey.Value()
	if key == "" {
		return nil, errors.New("verification codes need secrets.signing_key")
	}
	return &identity.Codes{Pool: s.Store.Pool, Key: []byte(key), Now: s.Now}, nil
}

func (s *Service) links() (*links.Signer, error) {
	if s.Links != nil {
		return s.Links, nil
	}
	key := s.Cfg.Secrets.SigningKey.Value()
	if key == "" {
		return nil, errors.New("export links need secrets.signing_key")
	}
	return &links.Signer{Key: []byte(key), Now: s.Now}, nil
}

func (s *Service) exports() (exportstore.Store, error) {
	if s.Exports != nil {
		return s.Exports, nil
	}
	return exportstore.NewDir(s.Cfg.Exports.Dir)
}

// SubjectKey is an opaque keyed hash of a subject's address (email, else phone, else customer
// id), so per-subject rate limits can count a subject without holding its address.
func (s *Service) SubjectKey(tenant string, sub connectors.Subject) string {
	return crypto.SubjectHash(s.Cfg.Secrets.SigningKey.Value(), tenant, strings.TrimSpace(sub.Email), sub.Phone, sub.CustomerID)
}

// RequestSubjectKey is SubjectKey of a request's subject. Unknown ids and other tenants'
// requests are ErrNotFound; a subject already forgotten is keyed by the request.
func (s *Service) RequestSubjectKey(ctx context.Context, tenant, id string) (string, error) {
	ids, known, err := s.Store.Subjects().OfRequest(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return "", err
	}
	if !known {
		return "request:" + id, nil
	}
	return s.SubjectKey(tenant, connectors.Subject{Email: ids.Email, Phone: ids.Phone, CustomerID: ids.CustomerID}), nil
}
