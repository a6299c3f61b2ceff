package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/store"
)

// Mailgun user variables a breach notice carries, so delivery events come back to it.
const (
	BreachVariable = mail.BreachVariable
	BatchVariable  = "lethe-batch" // <breach id>:<run>:<batch>, unique to one batch
)

// FoundSubjects asks LoadFound to add the people a connector's find wrote to its export file.
type FoundSubjects struct {
	BreachID  string
	TenantID  string // whether its people with only a phone are texted (tenants[].sms)
	Connector string
	Export    domain.ExportRef
}

// Loaded counts what LoadFound or an upload added to a breach's notice.
type Loaded struct {
	Added int64 `json:"added"` // new people listed
	// NoEmail are people with only a phone or a customer number: no email can reach them.
	NoEmail int64 `json:"no_email"`
	// Of those, ToText have a phone number the tenant texts (tenants[].sms) and are told by
	// text; NoContact cannot be told (no phone in E.164 form, or the tenant sends no texts).
	ToText    int64 `json:"to_text,omitempty"`
	NoContact int64 `json:"no_contact,omitempty"`
	Invalid   int64 `json:"invalid"` // addresses that are not email addresses
}

// LoadFound reads the subjects a find wrote (email, phone, customer_id) and lists those with an
// email address for the breach's notice, and those with only a phone to be texted if the tenant
// sends texts, in the file's order. The file holds personal data and
// stays in the export store, under the breach's own prefix; history carries only its reference
// and the counts. Listing is idempotent: a person already listed is not listed again.
func (a *Activities) LoadFound(ctx context.Context, f FoundSubjects) (Loaded, error) {
	var out Loaded
	obj := exportstore.Object{URI: f.Export.URI, SHA256: f.Export.SHA256, Bytes: f.Export.Bytes}
	if err := exportstore.Verify(ctx, a.Exports, obj); err != nil {
		return out, permanent("reading what "+f.Connector+" found", err)
	}
	r, err := a.Exports.Open(ctx, f.Export.URI)
	if err != nil {
		return out, err
	}
	defer r.Close()
	tr, err := protocol.NewTableReader(r, f.Connector+"/subjects")
	if err != nil {
		return out, permanent("reading what "+f.Connector+" found", err)
	}
	col := map[string]int{}
	for i, c := range tr.Header.Columns {
		col[c.Name] = i
	}
	email, ok := col["email"]
	if !ok {
		return out, permanent("reading what "+f.Connector+" found", errors.New("the subjects table has no email column"))
	}
	phone, hasPhone := col["phone"]
	texting := a.texting(f.TenantID)
	var rs []store.Recipient
	for {
		row, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, permanent("reading what "+f.Connector+" found", err)
		}
		var addr string
		_ = json.Unmarshal(row[email], &addr)
		addr = strings.TrimSpace(addr)
		var tel string
		if hasPhone {
			_ = json.Unmarshal(row[phone], &tel)
		}
		switch {
		case addr == "":
			out.NoEmail++
			if e164, ok := domain.E164(tel); ok && texting {
				out.ToText++
				rs = append(rs, store.Recipient{Phone: e164})
			} else {
				out.NoContact++
			}
		case !mail.ValidAddress(addr):
			out.Invalid++
		default:
			rs = append(rs, store.Recipient{Email: addr, Phone: tel})
		}
	}
	if out.Added, err = a.Store.Notices().AddRecipients(ctx, a.SigningKey, f.BreachID, f.Connector, rs); err != nil {
		return out, err
	}
	return out, nil
}

// NoticeContent is the Art. 34(2) content of a notice to the people affected, in plain language:
// what happened, the contact point, the likely consequences and the measures (Art. 33(3)(b)-(d)).
type NoticeContent struct {
	Nature          string   `json:"nature"`
	ContactPoint    string   `json:"contact_point"`
	Consequences    string   `json:"consequences"`
	Measures        string   `json:"measures"`
	Recommendations []string `json:"recommendations,omitempty"`
}

// NoticeBatch asks SendNoticeBatch for batch number Batch of a breach's notice.
type NoticeBatch struct {
	BreachID string
	TenantID string
	Run      int // the breach's notice run
	Batch    int // 1, 2, ...: batches are numbered by the workflow, so a retry is the same batch
	Size     int // people a batch (at most mail.MaxBatch)
	Content  NoticeContent
}

// BatchOutcome is what became of one batch. Done means nobody was left to claim.
type BatchOutcome struct {
	Batch      int  `json:"batch"`
	Recipients int  `json:"recipients"`
	Sent       int  `json:"sent"`
	Failed     int  `json:"failed"`
	Done       bool `json:"done"`
	// Resolved means an earlier attempt's send, whose answer was lost, was found accepted in
	// Mailgun's events and recorded instead of sent again.
	Resolved bool `json:"resolved,omitempty"`
}

// ErrInDoubt is the error type of a batch whose earlier send went unanswered and that Mailgun's
// events do not show yet: the activity is retried once they have had time to settle.
const ErrInDoubt = "in_doubt"

// SendNoticeBatch sends one batch of a breach's notice, exactly once per person:
//
//  1. The batch is claimed in PostgreSQL (its people marked, the batch recorded as claimed) in
//     one transaction before Mailgun is called; a retry finds the claim and sends to the same
//     people, never to others.
//  2. One Mailgun call sends it; the outcome (sent with the message id, or failed) is recorded
//     for the batch and each person in one transaction. An answered error queued nothing: the
//     batch is marked refused and sent again on retry.
//  3. A claimed batch without an outcome is in doubt: the worker died, or the answer was lost,
//     between the call and the record. Mailgun has no idempotency key, so the retry asks
//     Mailgun's events API whether the batch's first person has an accepted message carrying
//     the batch's variable; if so the batch is recorded as sent from it. If not, it waits until
//     NoticeSettle has passed since the claim (events are stored within seconds, not at once)
//     and only then sends again.
//
// Residual risk: a message Mailgun accepted but whose event is still not visible NoticeSettle
// after the claim is sent twice; NoticeSettle (mail.batch_settle, default 5 minutes) must be
// longer than Mailgun's event delay and the HTTP timeout (30 s).
func (a *Activities) SendNoticeBatch(ctx context.Context, nb NoticeBatch) (BatchOutcome, error) {
	out := BatchOutcome{Batch: nb.Batch}
	n := a.Store.Notices()
	key := batchKey(nb)
	b, err := n.Batch(ctx, nb.BreachID, nb.Run, nb.Batch)
	var rs []store.Recipient
	switch {
	case errors.Is(err, store.ErrNotFound):
		if rs, err = n.Claim(ctx, nb.BreachID, nb.Run, nb.Batch, min(max(nb.Size, 1), mail.MaxBatch), a.now()); err != nil {
			return out, err
		}
		if len(rs) == 0 {
			out.Done = true
			return out, nil
		}
	case err != nil:
		return out, err
	case b.Status == store.BatchSent || b.Status == store.BatchFailed:
		return settled(out, b.Status, b.Recipients), nil
	case b.Status == store.BatchReleased:
		// Its people went back to be claimed again: sending it now could tell them twice.
		return out, temporal.NewNonRetryableApplicationError("batch "+key+" was released: "+b.Error, ErrPermanent, nil)
	default:
		if rs, err = n.BatchRecipients(ctx, nb.BreachID, nb.Run, nb.Batch); err != nil {
			return out, err
		}
		if b.Status == store.BatchClaimed {
			found, err := a.resolve(ctx, nb, b, rs[0].Email)
			if err != nil {
				return out, err
			}
			if found {
				out = settled(out, store.BatchSent, len(rs))
				out.Resolved = true
				return out, nil
			}
		}
	}
	return a.sendBatch(ctx, nb, key, rs)
}

// NoticeMessage is the one Mailgun message batch nb of a breach's notice is sent as, to rs,
// in the tenant's branding (a function, not a method: every method is an activity).
func NoticeMessage(tenant mail.Branding, nb NoticeBatch, rs []store.Recipient) mail.Batch {
	b := mail.Batch{
		Notice: mail.Notice{Kind: mail.KindBreachNotification, Tenant: tenant, Data: map[string]any{
			"Nature": nb.Content.Nature, "ContactPoint": nb.Content.ContactPoint, "Consequences": nb.Content.Consequences,
			"Measures": nb.Content.Measures, "Recommendations": nb.Content.Recommendations, "Reference": nb.BreachID,
		}},
		Variables: map[string]string{BreachVariable: nb.BreachID, BatchVariable: batchKey(nb)},
	}
	for _, r := range rs {
		b.To = append(b.To, mail.BatchRecipient{Address: r.Email, ID: strconv.FormatInt(r.Seq, 10)})
	}
	return b
}

// batchKey is the value of BatchVariable: <breach id>:<run>:<batch>.
func batchKey(nb NoticeBatch) string {
	return nb.BreachID + ":" + strconv.Itoa(nb.Run) + ":" + strconv.Itoa(nb.Batch)
}

// resolve looks up a claimed batch whose send went unanswered in Mailgun's events, by its first
// person and the batch's variable, and records it as sent if Mailgun accepted it. Not found, it
// is an ErrInDoubt error to retry once NoticeSettle has passed since the claim, and after that
// found is false: the batch was not sent.
func (a *Activities) resolve(ctx context.Context, nb NoticeBatch, b store.NoticeBatch, first string) (found bool, err error) {
	key := batchKey(nb)
	id, found, err := a.Batch.Accepted(ctx, first, BatchVariable, key, b.ClaimedAt.Add(-time.Minute))
	if err != nil {
		return false, mailError("looking up batch "+key+" in Mailgun's events", err)
	}
	if found {
		return true, a.Store.Notices().Settle(ctx, nb.BreachID, nb.Run, nb.Batch, store.BatchSent, id, "", a.now())
	}
	if wait := a.NoticeSettle - a.now().Sub(b.ClaimedAt); wait > 0 {
		return false, temporal.NewApplicationErrorWithOptions("batch "+key+" went unanswered and is not in Mailgun's events yet",
			ErrInDoubt, temporal.ApplicationErrorOptions{NextRetryDelay: wait})
	}
	return false, nil
}

func (a *Activities) sendBatch(ctx context.Context, nb NoticeBatch, key string, rs []store.Recipient) (BatchOutcome, error) {
	out := BatchOutcome{Batch: nb.Batch}
	n := a.Store.Notices()
	id, err := a.Batch.SendBatch(ctx, NoticeMessage(a.branding(nb.TenantID), nb, rs))
	switch {
	case err == nil:
		return settled(out, store.BatchSent, len(rs)), n.Settle(ctx, nb.BreachID, nb.Run, nb.Batch, store.BatchSent, id, "", a.now())
	case mail.IsPermanent(err):
		return settled(out, store.BatchFailed, len(rs)), n.Settle(ctx, nb.BreachID, nb.Run, nb.Batch, store.BatchFailed, "", err.Error(), a.now())
	case mail.NotQueued(err):
		if serr := n.Settle(ctx, nb.BreachID, nb.Run, nb.Batch, store.BatchRefused, "", err.Error(), a.now()); serr != nil {
			return out, serr
		}
	}
	// Unanswered, the batch stays claimed: the retry resolves it from Mailgun's events.
	return out, mailError(fmt.Sprintf("sending batch %s (%d people)", key, len(rs)), err)
}

func settled(out BatchOutcome, status string, people int) BatchOutcome {
	out.Recipients = people
	if status == store.BatchSent {
		out.Sent = people
	} else {
		out.Failed = people
	}
	return out
}

// NoticeRelease asks ReleaseNoticeBatches to settle the unsettled batches of runs FromRun..ToRun
// of a breach's notice: those of a run that failed, was cancelled or was terminated.
type NoticeRelease struct {
	BreachID string
	FromRun  int
	ToRun    int
	Reason   string // why the runs stopped, kept on each released batch
}

// Released counts what ReleaseNoticeBatches did.
type Released struct {
	Batches  int `json:"batches"`  // released: their people go to the next run
	People   int `json:"people"`   // in those batches
	Resolved int `json:"resolved"` // found accepted in Mailgun's events and recorded as sent
	Sent     int `json:"sent"`     // people in those
	// Texts are people told by text released (sent nothing), TextsSent those found at Twilio.
	Texts     int `json:"texts,omitempty"`
	TextsSent int `json:"texts_sent,omitempty"`
}

// ReleaseNoticeBatches settles every batch (and text) a stopped run left claimed or refused, so
// its people are not "sending" for ever and a later run tells them, once: a refused batch queued nothing
// and is released at once; a claimed one is in doubt and is resolved as SendNoticeBatch resolves
// it (recorded as sent if Mailgun's events show it, released only once NoticeSettle has passed
// since the claim with no event). A released batch keeps the reason; the next claim takes its
// people first.
func (a *Activities) ReleaseNoticeBatches(ctx context.Context, r NoticeRelease) (Released, error) {
	var out Released
	n := a.Store.Notices()
	bs, err := n.Unsettled(ctx, r.BreachID, r.FromRun, r.ToRun)
	if err != nil {
		return out, err
	}
	for _, b := range bs {
		if b.Status == store.BatchClaimed {
			rs, err := n.BatchRecipients(ctx, r.BreachID, b.Run, b.Batch)
			if err != nil {
				return out, err
			}
			found, err := a.resolve(ctx, NoticeBatch{BreachID: r.BreachID, Run: b.Run, Batch: b.Batch}, b, rs[0].Email)
			if err != nil {
				return out, err
			}
			if found {
				out.Resolved++
				out.Sent += b.Recipients
				continue
			}
		}
		reason := "not sent: " + r.Reason
		if b.Error != "" {
			reason += " (last answer: " + b.Error + ")"
		}
		if err := n.Settle(ctx, r.BreachID, b.Run, b.Batch, store.BatchReleased, "", reason, a.now()); err != nil {
			return out, err
		}
		out.Batches++
		out.People += b.Recipients
	}
	out.Texts, out.TextsSent, err = a.releaseTexts(ctx, r)
	return out, err
}

// NoticeForget asks ForgetNoticeAddresses to clear the addresses of one notice run's people.
type NoticeForget struct {
	BreachID string
	Run      int
}

// ForgetNoticeAddresses clears the addresses of the people of a notice run whose notice is
// final (their batch sent or failed for good) and returns how many it cleared. It is
// idempotent.
func (a *Activities) ForgetNoticeAddresses(ctx context.Context, f NoticeForget) (int64, error) {
	return a.Store.Notices().Forget(ctx, f.BreachID, f.Run)
}

// FoundFiles asks DiscardFound to delete what a notice run's finds wrote, once it is listed.
type FoundFiles struct {
	BreachID  string
	Locations []string // the finds' export locations
}

// DiscardFound deletes the files the connectors' finds wrote for a notice run: they hold the
// people's addresses, which are in the register once LoadFound listed them. Deleting what is
// gone already is no error, so it can be retried.
func (a *Activities) DiscardFound(ctx context.Context, f FoundFiles) (int, error) {
	n := 0
	for _, loc := range f.Locations {
		k, err := a.Exports.RemoveAll(ctx, loc)
		if err != nil {
			return n, fmt.Errorf("deleting what the finds of breach %s wrote: %w", f.BreachID, err)
		}
		n += k
	}
	return n, nil
}
