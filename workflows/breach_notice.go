package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mail"
)

// SubjectFind is one finder every connector instance of the tenant that declares find runs,
// e.g. {finder: customers_with_health_notes}. Its params are criteria, never identities.
type SubjectFind struct {
	Finder string         `json:"finder"`
	Params map[string]any `json:"params,omitempty"`
}

// BreachNoticeInput starts (and, continued as new, resumes) notifying the people affected by a
// breach. It carries batch numbers and counts only: the people are in PostgreSQL.
type BreachNoticeInput struct {
	BreachID   string
	TenantID   string
	Run        int // the breach's notice run, 1, 2, ...
	Find       []SubjectFind
	Connectors []domain.ConnectorRef // the tenant's instances; those declaring find are asked
	ExportBase string
	Content    activities.NoticeContent
	BatchSize  int // people a batch (default and at most mail.MaxBatch)
	// TextBatchSize is people a text batch (default 100): each is one Twilio call.
	TextBatchSize int
	Parallel      int // batches in flight (default 4)
	// BatchesPerRun bounds one run's history: after that many batches the workflow continues as
	// new (default 200, about 1,400 events).
	BatchesPerRun int
	// Retention is how long after the run's end the addresses of those it told are kept
	// (mail.notice_retention; default 7 days).
	Retention time.Duration
	// What earlier runs did, carried across continue-as-new.
	Released  bool // earlier notice runs' unsettled batches were released
	Found     bool // the finds were done
	NextBatch int
	// Texting: the email batches are done and the texts go out (version notice-texts).
	Texting  bool
	NextText int
	Progress NoticeProgress
}

// NoticeProgress counts what a notice run did.
type NoticeProgress struct {
	Found   int64 `json:"found"`    // people the finds listed (new to this breach's notice)
	NoEmail int64 `json:"no_email"` // found with no email address
	// Of those, ToText were listed to be told by text (a phone, and the tenant sends texts);
	// NoContact cannot be told (no usable phone, or the tenant sends no texts).
	ToText    int64 `json:"to_text,omitempty"`
	NoContact int64 `json:"no_contact,omitempty"`
	Invalid   int64 `json:"invalid"` // found with an address that is not one
	Batches   int   `json:"batches"`
	Sent      int64 `json:"sent"`   // people told, by email or text
	Failed    int64 `json:"failed"` // people whose notice was refused for good
	// Of those, by text: the text batches, and the people texted and those whose number Twilio
	// refused for good (invalid, opted out).
	TextBatches int   `json:"text_batches,omitempty"`
	Texted      int64 `json:"texted,omitempty"`
	TextFailed  int64 `json:"text_failed,omitempty"`
	Resolved    int   `json:"resolved,omitempty"` // batches in doubt found accepted in Mailgun's events
	// Released are people of batches left unsent by a stopped run (this one, or an earlier one
	// at this run's start), given back to be told by a later run.
	Released int64 `json:"released,omitempty"`
}

// noticeTextOptions: a text batch heartbeats after each text; a dead worker's batch is retried
// after HeartbeatTimeout, longer than the sms connector's HTTP timeout (10 s by default).
var noticeTextOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Hour,
	HeartbeatTimeout:       time.Minute,
	ScheduleToCloseTimeout: 24 * time.Hour,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		NonRetryableErrorTypes: []string{activities.ErrPermanent},
	},
}

var noticeBatchOptions = workflow.ActivityOptions{
	// Longer than Mailgun's HTTP timeout (30 s); a dead worker's batch is retried after it.
	StartToCloseTimeout:    45 * time.Second,
	ScheduleToCloseTimeout: 24 * time.Hour,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		NonRetryableErrorTypes: []string{activities.ErrPermanent},
	},
}

// BreachNoticeWorkflow notifies the people affected by a high-risk breach (Art. 34): it asks
// the connectors to find them (or takes those an upload listed), then sends the notice in
// numbered batches, each claimed and settled in PostgreSQL by SendNoticeBatch so that nobody
// gets it twice, then texts those known only by a phone (SendNoticeTexts, one text a person,
// each claimed and settled likewise), and continues as new every BatchesPerRun batches so that a million people
// keep the history bounded. It is the breach workflow's child, ID <breach>-notice-<run>.
func BreachNoticeWorkflow(ctx workflow.Context, in BreachNoticeInput) (NoticeProgress, error) {
	in = noticeDefaults(in)
	if workflow.GetVersion(ctx, "notice-window", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return noticeWaves(ctx, in)
	}
	if !in.Released {
		// Earlier runs that were stopped before they could settle their batches.
		if err := releaseBatches(ctx, &in, 1, in.Run-1, "an earlier notice run stopped"); err != nil {
			return in.Progress, err
		}
		in.Released = true
	}
	err := sendNotice(ctx, &in)
	if workflow.IsContinueAsNewError(err) {
		return in.Progress, err
	}
	if err != nil {
		// Failed or cancelled: nobody of this run stays "sending"; a later run tells them.
		if rerr := releaseBatches(ctx, &in, in.Run, in.Run, "notice run "+strconv.Itoa(in.Run)+" stopped: "+errorMessage(err)); rerr != nil {
			err = multierror.Append(err, rerr)
		}
	}
	// Whatever the outcome, the addresses of those told, and the finds' files, go in time.
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	if ferr := forgetLater(dctx, in); ferr != nil {
		err = multierror.Append(err, fmt.Errorf("scheduling the forgetting of the notice's addresses: %w", ferr))
	}
	return in.Progress, err
}

func sendNotice(ctx workflow.Context, in *BreachNoticeInput) error {
	if !in.Found {
		if err := findSubjects(ctx, in, true); err != nil {
			return err
		}
		in.Found = true
	}
	return sendBatches(ctx, in)
}

// sendBatches keeps Parallel batches in flight, each claiming its own people, until one finds
// nobody left; then (version notice-texts) the same for the texts to people known only by a
// phone. After BatchesPerRun batches of either it drains and continues as new.
func sendBatches(ctx workflow.Context, in *BreachNoticeInput) error {
	started := 0
	if !in.Texting {
		bctx := workflow.WithActivityOptions(ctx, noticeBatchOptions)
		done, err := window(ctx, in, &started, func() workflow.Future {
			f := workflow.ExecuteActivity(bctx, a.SendNoticeBatch, activities.NoticeBatch{
				BreachID: in.BreachID, TenantID: in.TenantID, Run: in.Run, Batch: in.NextBatch, Size: in.BatchSize, Content: in.Content,
			})
			in.NextBatch++
			return f
		}, func(f workflow.Future) (bool, error) {
			var o activities.BatchOutcome
			if err := f.Get(ctx, &o); err != nil || o.Done {
				return o.Done, err
			}
			in.Progress.add(o)
			return false, nil
		})
		switch {
		case err != nil:
			return fmt.Errorf("sending the notice of breach %s: %w", in.BreachID, err)
		case !done:
			return workflow.NewContinueAsNewError(ctx, BreachNoticeWorkflow, *in)
		}
		in.Texting = true
	}
	if workflow.GetVersion(ctx, "notice-texts", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	tctx := workflow.WithActivityOptions(ctx, noticeTextOptions)
	done, err := window(ctx, in, &started, func() workflow.Future {
		f := workflow.ExecuteActivity(tctx, a.SendNoticeTexts, activities.NoticeTexts{
			BreachID: in.BreachID, TenantID: in.TenantID, Run: in.Run, Batch: in.NextText, Size: in.TextBatchSize, Content: in.Content,
		})
		in.NextText++
		return f
	}, func(f workflow.Future) (bool, error) {
		var o activities.TextsOutcome
		if err := f.Get(ctx, &o); err != nil || o.Done {
			return o.Done, err
		}
		in.Progress.TextBatches++
		in.Progress.Sent += int64(o.Sent)
		in.Progress.Texted += int64(o.Sent)
		in.Progress.Failed += int64(o.Failed)
		in.Progress.TextFailed += int64(o.Failed)
		in.Progress.Resolved += o.Resolved
		return false, nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("texting the notice of breach %s: %w", in.BreachID, err)
	case !done:
		return workflow.NewContinueAsNewError(ctx, BreachNoticeWorkflow, *in)
	}
	return nil
}

// window keeps in.Parallel activities in flight, started with start and each ended with end,
// until one is done (nobody left) or one fails; it starts no more after in.BatchesPerRun in
// this run (counted in started) or when Temporal suggests continuing as new. It reports whether
// one was done, once all it started have ended.
func window(ctx workflow.Context, in *BreachNoticeInput, started *int, start func() workflow.Future, end func(workflow.Future) (bool, error)) (bool, error) {
	sel := workflow.NewSelector(ctx)
	var errs *multierror.Error
	inFlight, done := 0, false
	for {
		for inFlight < in.Parallel && !done && errs == nil && *started < in.BatchesPerRun && !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			f := start()
			*started++
			inFlight++
			sel.AddFuture(f, func(f workflow.Future) {
				inFlight--
				d, err := end(f)
				if err != nil {
					errs = multierror.Append(errs, err)
				}
				done = done || d
			})
		}
		if inFlight == 0 {
			break
		}
		sel.Select(ctx)
	}
	return done, errs.ErrorOrNil()
}

func (p *NoticeProgress) add(o activities.BatchOutcome) {
	p.Batches++
	p.Sent += int64(o.Sent)
	p.Failed += int64(o.Failed)
	if o.Resolved {
		p.Resolved++
	}
}

// releaseBatches settles what runs from..to left unsettled, in a context that outlives a
// cancellation, and counts it: the people given back, and those of this run's batches found sent.
func releaseBatches(ctx workflow.Context, in *BreachNoticeInput, from, to int, reason string) error {
	if from > to {
		return nil
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	dctx = workflow.WithActivityOptions(dctx, noticeBatchOptions)
	var r activities.Released
	err := workflow.ExecuteActivity(dctx, a.ReleaseNoticeBatches, activities.NoticeRelease{BreachID: in.BreachID, FromRun: from, ToRun: to, Reason: reason}).Get(dctx, &r)
	if err != nil {
		return fmt.Errorf("releasing the unsent batches of the notice of breach %s: %w", in.BreachID, err)
	}
	in.Progress.Released += int64(r.People + r.Texts)
	if from == in.Run {
		in.Progress.Sent += int64(r.Sent + r.TextsSent)
		in.Progress.Texted += int64(r.TextsSent)
		in.Progress.Resolved += r.Resolved
	}
	return nil
}

// noticeWaves is how runs started before the "notice-window" version send: waves of Parallel
// batches, each wave waiting for its slowest batch.
func noticeWaves(ctx workflow.Context, in BreachNoticeInput) (NoticeProgress, error) {
	if !in.Found {
		if err := findSubjects(ctx, &in, false); err != nil {
			return in.Progress, err
		}
		in.Found = true
	}
	bctx := workflow.WithActivityOptions(ctx, noticeBatchOptions)
	for sent := 0; ; {
		if sent >= in.BatchesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return in.Progress, workflow.NewContinueAsNewError(ctx, BreachNoticeWorkflow, in)
		}
		var fs []workflow.Future
		for i := 0; i < in.Parallel; i++ {
			fs = append(fs, workflow.ExecuteActivity(bctx, a.SendNoticeBatch, activities.NoticeBatch{
				BreachID: in.BreachID, TenantID: in.TenantID, Run: in.Run, Batch: in.NextBatch + i, Size: in.BatchSize, Content: in.Content,
			}))
		}
		done := false
		var errs *multierror.Error
		for _, f := range fs {
			var o activities.BatchOutcome
			if err := f.Get(ctx, &o); err != nil {
				errs = multierror.Append(errs, err)
				continue
			}
			done = done || o.Done
			if !o.Done {
				in.Progress.add(o)
			}
		}
		if err := errs.ErrorOrNil(); err != nil {
			return in.Progress, fmt.Errorf("sending the notice of breach %s: %w", in.BreachID, err)
		}
		in.NextBatch += in.Parallel
		sent += in.Parallel
		if done {
			return in.Progress, nil
		}
	}
}

func noticeDefaults(in BreachNoticeInput) BreachNoticeInput {
	if in.BatchSize <= 0 || in.BatchSize > mail.MaxBatch {
		in.BatchSize = mail.MaxBatch
	}
	if in.Parallel <= 0 {
		in.Parallel = 4
	}
	if in.BatchesPerRun <= 0 {
		in.BatchesPerRun = 200
	}
	if in.NextBatch <= 0 {
		in.NextBatch = 1
	}
	if in.NextText <= 0 {
		in.NextText = 1
	}
	if in.TextBatchSize <= 0 {
		in.TextBatchSize = 100
	}
	if in.Retention <= 0 {
		in.Retention = 7 * 24 * time.Hour
	}
	return in
}

// findSubjects runs every finder on every instance that declares find, in parallel, and lists
// what each found; with discard, it then deletes the files the finds wrote. A failed instance
// fails the run, naming it: notifying only some of the people found would look complete when
// it is not.
func findSubjects(ctx workflow.Context, in *BreachNoticeInput, discard bool) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: 24 * time.Hour, StartToCloseTimeout: time.Hour, HeartbeatTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrPermanent}},
	})
	type call struct {
		connector, location string
		f                   workflow.Future
	}
	var calls []call
	for _, c := range in.Connectors {
		if !c.Has("find") {
			continue
		}
		for i, f := range in.Find {
			params := map[string]any{"finder": f.Finder}
			for _, k := range workflow.DeterministicKeys(f.Params) {
				params[k] = f.Params[k]
			}
			loc := strings.TrimSuffix(in.ExportBase, "/") + "/" + in.TenantID + "/" + in.BreachID + "/notice-" + strconv.Itoa(in.Run) + "-" + strconv.Itoa(i+1)
			calls = append(calls, call{c.Name, loc, workflow.ExecuteActivity(actx, a.DispatchCommand, activities.Dispatch{
				RequestID: in.BreachID, TenantID: in.TenantID, Connector: c.Name, Action: "find", Params: params,
				IdempotencyKey: in.BreachID + ":notice:" + strconv.Itoa(in.Run) + ":" + strconv.Itoa(i+1) + ":" + c.Name + ":find",
				ExportLocation: loc,
			})})
		}
	}
	if len(in.Find) > 0 && len(calls) == 0 {
		return temporal.NewNonRetryableApplicationError("no connector instance of tenant "+in.TenantID+" declares find", activities.ErrPermanent, nil)
	}
	rctx := workflow.WithActivityOptions(ctx, recordOptions)
	var errs *multierror.Error
	for _, c := range calls {
		var out domain.Output
		if err := c.f.Get(ctx, &out); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s find: %s", c.connector, errorMessage(err)))
			continue
		}
		for _, ref := range out.Exports {
			var l activities.Loaded
			err := workflow.ExecuteActivity(rctx, a.LoadFound, activities.FoundSubjects{BreachID: in.BreachID, TenantID: in.TenantID, Connector: c.connector, Export: ref}).Get(ctx, &l)
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("%s find: %s", c.connector, errorMessage(err)))
				continue
			}
			in.Progress.Found += l.Added
			in.Progress.NoEmail += l.NoEmail
			in.Progress.ToText += l.ToText
			in.Progress.NoContact += l.NoContact
			in.Progress.Invalid += l.Invalid
		}
	}
	if errs != nil || !discard || len(calls) == 0 {
		return errs.ErrorOrNil()
	}
	// Listed in the register: the files' copies of the addresses are needed no more.
	var locs []string
	for _, c := range calls {
		if !slices.Contains(locs, c.location) {
			locs = append(locs, c.location)
		}
	}
	return workflow.ExecuteActivity(rctx, a.DiscardFound, activities.FoundFiles{BreachID: in.BreachID, Locations: locs}).Get(ctx, nil)
}

// BreachSubjects starts notifying the people affected by a high-risk breach: those the
// connectors find, or those an upload listed before (Uploaded counts them).
type BreachSubjects struct {
	Find     []SubjectFind `json:"find,omitempty"`
	Uploaded int64         `json:"uploaded,omitempty"`
	// Resume tells the people earlier runs left unsent (their batches released), alone or
	// with new people.
	Resume bool `json:"resume,omitempty"`
	// Connectors, ExportBase and Retention are the tenant's and the deployment's, resolved by
	// the caller from the configuration.
	Connectors []domain.ConnectorRef `json:"connectors,omitempty"`
	ExportBase string                `json:"export_base,omitempty"`
	Retention  time.Duration         `json:"retention,omitempty"`
	Actor      string                `json:"actor"`
}

// Notice run statuses.
const (
	NoticeRunning = "running"
	NoticeDone    = "done"
	NoticeFailed  = "failed"
)

// BreachNoticeRun is one run of notifying the people affected, as the breach's state shows it.
type BreachNoticeRun struct {
	Run        int            `json:"run"`
	Source     string         `json:"source"` // connectors or upload
	Actor      string         `json:"actor"`
	StartedAt  time.Time      `json:"started_at"`
	Status     string         `json:"status"`
	Progress   NoticeProgress `json:"progress"` // as of the run's end
	Error      string         `json:"error,omitempty"`
	WorkflowID string         `json:"workflow_id"`
}

func (b *breach) registerNotices(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateBreachSubjects,
		func(ctx workflow.Context, s BreachSubjects) (BreachState, error) {
			ctx = workflow.WithActivityOptions(ctx, recordOptions)
			run := BreachNoticeRun{Run: len(b.state.Notices) + 1, Source: "connectors", Actor: s.Actor,
				StartedAt: workflow.Now(ctx), Status: NoticeRunning}
			switch {
			case len(s.Find) == 0 && s.Uploaded == 0:
				run.Source = "resume"
			case len(s.Find) == 0:
				run.Source = "upload"
			}
			run.WorkflowID = b.in.BreachID + "-notice-" + strconv.Itoa(run.Run)
			b.state.Notices = append(b.state.Notices, run)
			c := b.state.Content
			in := BreachNoticeInput{BreachID: b.in.BreachID, TenantID: b.in.TenantID, Run: run.Run, Find: s.Find,
				Connectors: s.Connectors, ExportBase: s.ExportBase, Retention: s.Retention, Found: len(s.Find) == 0,
				Content: activities.NoticeContent{Nature: c.Nature, ContactPoint: c.ContactPoint, Consequences: c.Consequences, Measures: c.Measures}}
			// The run goes on if the breach is closed meanwhile: people are told all the same.
			cctx := workflow.WithChildOptions(b.ctx, workflow.ChildWorkflowOptions{WorkflowID: run.WorkflowID, ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON})
			child := workflow.ExecuteChildWorkflow(cctx, BreachNoticeWorkflow, in)
			if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
				b.endNotice(run.Run, NoticeProgress{}, err)
				return b.snapshot(ctx), fmt.Errorf("starting the notice run: %w", err)
			}
			workflow.Go(b.ctx, func(gctx workflow.Context) {
				var p NoticeProgress
				err := child.Get(gctx, &p)
				b.endNotice(run.Run, p, err)
				gctx = workflow.WithActivityOptions(gctx, recordOptions)
				r := b.state.Notices[run.Run-1]
				_ = b.record(gctx, activities.BreachStep{Actor: "lethe", Action: "breach.subjects_notified", Detail: map[string]any{
					"run": r.Run, "status": r.Status, "sent": p.Sent, "failed": p.Failed, "batches": p.Batches, "texted": p.Texted}})
			})
			return b.change(ctx, activities.BreachStep{Actor: s.Actor, Action: "breach.subjects_notifying",
				Detail: map[string]any{"run": run.Run, "source": run.Source, "finders": len(s.Find), "uploaded": s.Uploaded}},
				"notifying the people affected (run "+strconv.Itoa(run.Run)+", "+run.Source+") by "+s.Actor)
		},
		workflow.UpdateHandlerOptions{Validator: b.validateSubjects})
}

func (b *breach) validateSubjects(s BreachSubjects) error {
	if err := b.validateActor(s.Actor); err != nil {
		return err
	}
	if b.state.Risk != "high" {
		return fmt.Errorf("the people affected are notified when the risk to them is high (Art. 34); the assessment is %q", cmp.Or(b.state.Risk, "not made"))
	}
	c := b.state.Content
	var lack []string
	for _, f := range []struct{ name, v string }{{"nature", c.Nature}, {"contact_point", c.ContactPoint}, {"consequences", c.Consequences}, {"measures", c.Measures}} {
		if strings.TrimSpace(f.v) == "" {
			lack = append(lack, f.name)
		}
	}
	if len(lack) > 0 {
		return fmt.Errorf("the notice to the people affected needs the content's %s (Art. 34(2)): update the content first", strings.Join(lack, ", "))
	}
	for _, r := range b.state.Notices {
		if r.Status == NoticeRunning {
			return fmt.Errorf("notice run %d is still sending; start another once it is done", r.Run)
		}
	}
	if len(s.Find) == 0 && s.Uploaded == 0 && !s.Resume {
		return fmt.Errorf("nobody to notify: name finders for the connectors, upload a CSV, or resume a run that stopped")
	}
	if s.Resume && !slices.ContainsFunc(b.state.Notices, func(r BreachNoticeRun) bool { return r.Status == NoticeFailed }) {
		return fmt.Errorf("nothing to resume: no notice run of this breach stopped before it was done")
	}
	for i, f := range s.Find {
		if strings.TrimSpace(f.Finder) == "" {
			return fmt.Errorf("find[%d] needs a finder", i)
		}
	}
	return nil
}

// endNotice records how a run ended.
func (b *breach) endNotice(run int, p NoticeProgress, err error) {
	r := &b.state.Notices[run-1]
	r.Progress, r.Status = p, NoticeDone
	if err != nil {
		r.Status, r.Error = NoticeFailed, errorMessage(err)
	}
}
